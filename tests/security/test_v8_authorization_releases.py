"""ASVS 5.0 V8 (authorization) for agents' releases: who may read and create them, through the API
and the staff UI alike."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Release
from agents.services import release_create
from tests.conftest import client_for
from tests.factories import AgentFactory, APIKeyFactory, PersonaFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_release(other_org):
    agent = AgentFactory(organization=other_org, name="Their adviser")
    PersonaFactory(agent=agent, is_active=True)
    return release_create(agent=agent, actor=None, notes="Theirs")


def test_another_organisations_releases_are_not_found(foreign_release, editor_client, staff_client):
    """ASVS 5.0 V8.2.2: data-specific access — another organisation's release, its diff and its
    agent's release list answer 404 through the API and the staff UI; nothing is created there."""
    agent = foreign_release.agent
    base = f"/api/v1/agents/{agent.pk}/releases/"
    for response in (
        editor_client.get(base),
        editor_client.get(f"{base}1/"),
        editor_client.get(f"{base}1/diff/?against=1"),
        editor_client.post(base, {"notes": "mine"}, format="json"),
        staff_client.get(reverse("admin:agents_agent_release", args=[agent.pk, 1])),
        staff_client.get(reverse("admin:agents_agent_release_diff", args=[agent.pk]) + "?a=1&b=1"),
        staff_client.post(reverse("admin:agents_agent_release_create", args=[agent.pk])),
    ):
        assert response.status_code == 404
    assert Release.objects.filter(agent=agent).count() == 1


def test_creating_a_release_needs_the_editor_role_or_the_write_scope(org, viewer_client, viewer_admin_client):
    """ASVS 5.0 V8.2.1: function-level access — a viewer (API and staff UI) and a `read` key may read
    releases but not create one (403); a `write` key may."""
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    url = f"/api/v1/agents/{agent.pk}/releases/"
    reader = client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)
    writer = client_for(key=APIKeyFactory(organization=org, scopes=["write"]).plaintext)
    assert viewer_client.post(url, {}, format="json").status_code == 403
    assert reader.post(url, {}, format="json").status_code == 403
    assert (
        viewer_admin_client.post(reverse("admin:agents_agent_release_create", args=[agent.pk])).status_code
        == 403
    )
    assert not Release.objects.filter(agent=agent).exists()
    assert viewer_client.get(url).status_code == reader.get(url).status_code == 200
    assert writer.post(url, {"notes": "From CI"}, format="json").status_code == 201
