"""``/api/v1/agents/``: CRUD through the generic tests, plus lifecycle actions and filters."""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentStatus
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    AgentToolFactory,
    ExecutionFactory,
    ModelProviderFactory,
    PersonaFactory,
    release_now,
)
from tests.support.api import APIResourceTests, assert_error, results

pytestmark = pytest.mark.django_db


class TestAgentAPI(APIResourceTests):
    model = Agent
    factory = AgentFactory
    url = "/api/v1/agents/"
    create_data = {"name": "VAT adviser", "type": "tax", "description": "Answers EU VAT questions."}
    update_data = {"description": "Answers VAT questions with citations.", "type": "advisory"}
    invalid_data = {"name": "", "type": "nonsense", "max_tool_rounds": 99}

    def make_list_objects(self, organization, parent, count):
        provider = ModelProviderFactory(organization=organization)
        agents = []
        for _ in range(count):
            agent = AgentFactory(organization=organization, provider=provider, owner=self.member("editor"))
            PersonaFactory(agent=agent, is_active=True)
            agents.append(agent)
        return agents


def test_create_derives_slug_and_starts_as_draft(editor_client):
    """A new agent is a draft with a slug made from its name; status cannot be set on create."""
    response = editor_client.post(
        "/api/v1/agents/", {"name": "VAT adviser", "status": "active"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "vat-adviser" and body["status"] == "draft"
    assert body["active_persona_version"] is None


def test_duplicate_name_409_with_message(org, editor_client):
    """A name already taken in the organisation clashes with the existing agent (409, on ``name``)."""
    AgentFactory(organization=org, name="VAT helper")
    response = editor_client.post("/api/v1/agents/", {"name": "VAT helper"}, format="json")
    body = assert_error(response, 409, fields=("name",))
    assert body["errors"]["name"] == ["An agent named 'VAT helper' already exists in this organisation."]


def test_other_organisations_provider_is_not_found(org, other_org, editor_client):
    """A provider id of another organisation is refused like a missing one (404 naming the field)."""
    foreign = ModelProviderFactory(organization=other_org)
    response = editor_client.post("/api/v1/agents/", {"name": "A", "provider": foreign.pk}, format="json")
    assert_error(response, 404, fields=("provider",))
    assert not Agent.objects.filter(name="A").exists()


def test_owner_must_be_a_member(org, other_org, editor, editor_client):
    from tests.factories import MembershipFactory, UserFactory

    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider, organization=other_org)
    response = editor_client.post("/api/v1/agents/", {"name": "A", "owner": outsider.pk}, format="json")
    assert_error(response, 404, fields=("owner",))
    response = editor_client.post("/api/v1/agents/", {"name": "B", "owner": editor.pk}, format="json")
    assert response.status_code == 201 and response.json()["owner_username"] == editor.username


def test_activate_without_release_409_then_a_request_202(org, editor_client):
    """Activating needs a release; with one, the call is a request another admin or owner approves
    (202 with the pending request: nothing goes live yet)."""
    agent = AgentFactory(organization=org)
    body = assert_error(editor_client.post(f"/api/v1/agents/{agent.pk}/activate/"), 409)
    assert "no release yet" in body["message"]
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent, activate=False)
    response = editor_client.post(f"/api/v1/agents/{agent.pk}/activate/")
    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["release"] == 1
    agent.refresh_from_db()
    assert agent.status == "draft"
    assert AuditEvent.objects.filter(action="activation_request.create").exists()
    response = editor_client.post(f"/api/v1/agents/{agent.pk}/deprecate/")
    assert response.json()["status"] == "deprecated"


def test_lifecycle_actions_need_write_rights(org, viewer_client):
    agent = AgentFactory(organization=org)
    assert_error(viewer_client.post(f"/api/v1/agents/{agent.pk}/deprecate/"), 403)
    agent.refresh_from_db()
    assert agent.status == AgentStatus.DRAFT


def test_clone_copies_personas_and_assignments(org, editor_client):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    AgentToolFactory(agent=agent)
    response = editor_client.post(f"/api/v1/agents/{agent.pk}/clone/", {"name": "Copy"}, format="json")
    assert response.status_code == 201, response.json()
    clone = Agent.objects.get(pk=response.json()["id"])
    assert clone.status == "draft" and clone.personas.count() == 1 and clone.tool_assignments.count() == 1
    assert response.json()["active_persona_version"] == 1
    assert_error(
        editor_client.post(f"/api/v1/agents/{agent.pk}/clone/", {"name": "Copy"}, format="json"), 409
    )
    assert_error(editor_client.post(f"/api/v1/agents/{agent.pk}/clone/", {"name": ""}, format="json"), 400)


def test_clone_other_organisation_404(other_org, editor_client):
    agent = AgentFactory(organization=other_org)
    assert_error(
        editor_client.post(f"/api/v1/agents/{agent.pk}/clone/", {"name": "Mine"}, format="json"), 404
    )


def test_delete_agent_with_executions_409(org, editor_client):
    """An agent with executions is kept (409, "deprecate it instead")."""
    agent = AgentFactory(organization=org)
    ExecutionFactory(agent=agent)
    body = assert_error(editor_client.delete(f"/api/v1/agents/{agent.pk}/"), 409)
    assert "deprecate it instead" in body["message"]
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_filters_search_and_ordering(org, editor, viewer_client):
    AgentFactory(organization=org, name="VAT adviser", type="tax", status="active", owner=editor)
    AgentFactory(organization=org, name="Audit sampler", type="audit", description="Samples ledgers")
    AgentFactory(organization=org, name="Zeta", type="general", status="deprecated")

    def names(**params):
        response = viewer_client.get("/api/v1/agents/", params)
        assert response.status_code == 200, response.json()
        return [row["name"] for row in results(response)]

    assert names(type="tax") == ["VAT adviser"]
    assert names(status=["active", "deprecated"]) == ["VAT adviser", "Zeta"]
    assert names(owner=editor.pk) == ["VAT adviser"]
    assert names(search="ledgers") == ["Audit sampler"]
    assert names(ordering="-name") == ["Zeta", "VAT adviser", "Audit sampler"]
    assert_error(viewer_client.get("/api/v1/agents/", {"type": "bogus"}), 400, fields=("type",))


def test_a_partial_update_answers_the_whole_agent(org, editor, editor_client):
    """PATCH answers every field of the schema's Agent, ``owner_username`` included, owner or none
    (DRF skipped the default of a ``source="owner.username"`` field on partial updates; schemathesis)."""
    agent = AgentFactory(organization=org)
    body = editor_client.patch(f"/api/v1/agents/{agent.pk}/", {"description": "VAT."}, format="json").json()
    assert body["owner_username"] is None
    body = editor_client.patch(f"/api/v1/agents/{agent.pk}/", {"owner": editor.pk}, format="json").json()
    assert body["owner_username"] == editor.username
    full = editor_client.get(f"/api/v1/agents/{agent.pk}/").json()
    assert set(body) == set(full)


def test_max_length_counts_what_was_sent(org, editor_client):
    """A name over 120 characters is refused even when trimming its surrounding whitespace would make
    it fit: the schema's maxLength is on what is sent (schemathesis sent a tab and 120 characters)."""
    response = editor_client.post("/api/v1/agents/", {"name": "\t" + "x" * 120}, format="json")
    body = assert_error(response, 400, fields=["name"])
    assert "no more than 120 characters" in body["errors"]["name"][0]
    response = editor_client.post("/api/v1/agents/", {"name": " VAT adviser "}, format="json")
    assert response.status_code == 201 and response.json()["name"] == "VAT adviser"
