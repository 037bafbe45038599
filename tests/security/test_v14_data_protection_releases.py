"""ASVS 5.0 V14 (data protection) for agents' releases: a release shows no secret, and its learning
examples' client identifiers only to those who may see them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import LearningExampleStatus
from agents.services import learning_example_create, release_create
from tests.conftest import client_for
from tests.factories import AgentFactory, AgentToolFactory, APIKeyFactory, PersonaFactory, ToolFactory

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
SECRET = "Bearer sk-live-7f3a9c1e"


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    tool = ToolFactory(organization=org, name="Ledger", secret_headers=f'{{"Authorization": "{SECRET}"}}')
    AgentToolFactory(agent=agent, tool=tool)
    learning_example_create(
        agent=agent,
        actor=None,
        input=f"Refund to {IBAN}?",
        output="Yes.",
        status=LearningExampleStatus.APPROVED,
    )
    release_create(agent=agent, actor=None)
    return agent


def test_a_release_never_shows_a_secret(agent, editor_client, staff_client):
    """ASVS 5.0 V14.2.6: only the minimum sensitive data is returned — a tool's secret headers are not
    part of a release: neither its API detail nor its staff page shows them, even to an editor."""
    responses = [
        editor_client.get(f"/api/v1/agents/{agent.pk}/releases/1/"),
        staff_client.get(reverse("admin:agents_agent_release", args=[agent.pk, 1])),
    ]
    for response in responses:
        assert response.status_code == 200
        assert SECRET not in response.content.decode() and "sk-live" not in response.content.decode()


def test_release_examples_mask_identifiers_for_viewers_and_keys(
    org, agent, viewer_client, viewer_admin_client
):
    """ASVS 5.0 V14.2.6: a release's learning examples show client identifiers masked to a viewer and an
    API key (API and staff UI), in full only to editors and above (agents.privacy)."""
    key = client_for(key=APIKeyFactory(organization=org, scopes=["read", "write", "admin"]).plaintext)
    for response in (
        viewer_client.get(f"/api/v1/agents/{agent.pk}/releases/1/"),
        key.get(f"/api/v1/agents/{agent.pk}/releases/1/"),
        viewer_admin_client.get(reverse("admin:agents_agent_release", args=[agent.pk, 1])),
    ):
        assert response.status_code == 200
        assert IBAN not in response.content.decode() and "DE89 •••• 3000" in response.content.decode()
