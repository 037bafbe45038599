"""API responses are never cached: ``Cache-Control: no-store`` on every answer under ``/api/``,
the ones that show a new key's secret, the authenticated ones and the errors alike."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/api-keys/"


def assert_no_store(response) -> None:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "no-cache", "private", "max-age=0"} <= directives, response.get("Cache-Control")
    assert "Expires" in response


def test_anonymous_401_is_not_stored():
    response = Client().get("/api/v1/agents/")
    assert response.status_code == 401
    assert_no_store(response)


def test_authenticated_lists_are_not_stored(owner, key_client):
    session = Client()
    session.force_login(owner)
    for client in (session, key_client):
        response = client.get("/api/v1/members/")
        assert response.status_code == 200
        assert_no_store(response)


def test_the_answers_that_show_a_new_key_are_not_stored(owner):
    client = client_for(owner)
    created = client.post(KEYS, {"name": "Portal", "scopes": ["read"]}, format="json")
    assert created.status_code == 201 and created.json()["key"].startswith("pg_")
    assert_no_store(created)
    rotated = client.post(f"{KEYS}{created.json()['id']}/rotate/", {"grace_seconds": 0}, format="json")
    assert rotated.status_code == 201 and rotated.json()["key"] != created.json()["key"]
    assert_no_store(rotated)


def test_errors_are_not_stored(owner, viewer):
    """Errors from the view (400, 403, 404), from the guard before it and from Django's URL router."""
    client = client_for(owner)
    responses = [
        (client.post(KEYS, {"name": ""}, format="json"), 400),
        (client_for(viewer).get(KEYS), 403),
        (client.get(f"{KEYS}999999/"), 404),
        (client.get("/api/v1/no-such-resource/"), 404),
        (client.get("/api/v1/agents/", {"q": "\x00"}), 400),
    ]
    for response, status in responses:
        assert_error(response, status)
        assert_no_store(response)
