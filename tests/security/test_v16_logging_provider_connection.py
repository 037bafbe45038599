"""ASVS 5.0 level 2, chapter V16 (security logging), for "Test connection" on a model provider's page
(issue 18): each test is an audit event, and the provider's key is written nowhere."""

from __future__ import annotations

import json
import logging

import pytest

from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    KEY,
    _fresh_rate_limits,
    connection_events,
    error_body,
    local_provider,
    models_list,
    press,
)

pytestmark = pytest.mark.django_db


def test_v16_2_1_each_test_is_audited_with_who_and_the_outcome(
    admin_role_client,
    admin_user,
    httpserver,
    local_provider,  # noqa: F811
):
    """ASVS 5.0 V16.2.1: each press is a ``provider.test`` event naming the person, the provider, the
    outcome, how it asked and the error."""
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/models").respond_with_json(models_list("gpt-test"))
    httpserver.expect_ordered_request("/v1/models").respond_with_json(error_body("no"), status=401)
    press(admin_role_client, provider)
    press(admin_role_client, provider)
    ok, failed = connection_events(provider)
    assert ok.actor_user_id == failed.actor_user_id == admin_user.pk
    assert ok.object_type.endswith("modelprovider") and ok.object_id == str(provider.pk)
    assert (ok.after["outcome"], ok.after["method"], ok.after["models"]) == ("ok", "models", 1)
    assert failed.after["outcome"] == "failed" and "HTTP 401" in failed.after["error"]


def test_v16_2_5_the_key_is_in_no_log_event_or_page(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    settings,
    caplog,
):
    """ASVS 5.0 V16.2.5 (sensitive data not logged): whatever the outcome — listed, refused key,
    blocked by the guard — the key is in neither the answer, the audit events nor the log records,
    while the provider did receive it."""
    caplog.set_level(logging.DEBUG)
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/models").respond_with_json(models_list("gpt-test"))
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        error_body(f"bad key {KEY}"), status=401
    )
    pages = [press(admin_role_client, provider).content.decode() for _ in range(2)]
    settings.PROVIDER_ALLOWED_HOSTS = []
    pages.append(press(admin_role_client, provider, htmx=False).content.decode())
    assert httpserver.log[0][0].headers["Authorization"] == f"Bearer {KEY}"
    events = connection_events(provider)
    assert len(events) == 3
    recorded = json.dumps([[e.before, e.after, e.object_repr] for e in events])
    assert KEY not in recorded and KEY not in caplog.text
    assert all(KEY not in page for page in pages)
