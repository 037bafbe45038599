"""``/api/v1/agents/{id}/tools|knowledge|guardrails/``: assign, change settings and order, unassign."""

from __future__ import annotations

import pytest

from agents.models import AgentGuardrail, AgentKnowledge, AgentTool
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    AgentKnowledgeFactory,
    AgentToolFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    ToolFactory,
)
from tests.support.api import APIResourceTests, assert_error, results
from tools.models import Tool

pytestmark = pytest.mark.django_db


class _AssignmentTests(APIResourceTests):
    organization_lookup = "agent__organization"
    parent_lookup = "agent"
    assignment_factory = None
    target_factory = None
    target_field = ""

    def make_parent(self, organization):
        return AgentFactory(organization=organization)

    def make_object(self, organization, parent=None):
        return self.assignment_factory(agent=parent)

    def get_create_data(self, parent):
        target = self.target_factory(organization=parent.organization)
        return {self.target_field: target.pk, **(self.create_data or {})}


class TestAgentToolAPI(_AssignmentTests):
    model = AgentTool
    url = "/api/v1/agents/{parent.pk}/tools/"
    assignment_factory = AgentToolFactory
    target_factory = ToolFactory
    target_field = "tool"
    create_data = {"enabled": True, "settings": {"note": "for VAT"}}
    update_data = {"enabled": False, "order": 4}
    invalid_data = {"tool": 999999, "order": -1}


class TestAgentKnowledgeAPI(_AssignmentTests):
    model = AgentKnowledge
    url = "/api/v1/agents/{parent.pk}/knowledge/"
    assignment_factory = AgentKnowledgeFactory
    target_factory = KnowledgeBaseFactory
    target_field = "knowledge_base"
    create_data = {"top_k": 3, "min_score": 0.1}
    update_data = {"top_k": 8}
    invalid_data = {"knowledge_base": None, "top_k": 0}


class TestAgentGuardrailAPI(_AssignmentTests):
    model = AgentGuardrail
    url = "/api/v1/agents/{parent.pk}/guardrails/"
    assignment_factory = AgentGuardrailFactory
    target_factory = GuardrailFactory
    target_field = "guardrail"
    update_data = {"enabled": False}
    invalid_data = {"guardrail": "abc", "enabled": "maybe"}


def test_assigning_another_organisations_tool_is_refused(org, other_org, editor_client):
    """Another organisation's tool is not found among the caller's (404 naming the field)."""
    agent = AgentFactory(organization=org)
    foreign = ToolFactory(organization=other_org)
    response = editor_client.post(f"/api/v1/agents/{agent.pk}/tools/", {"tool": foreign.pk}, format="json")
    assert_error(response, 404, fields=("tool",))
    assert not AgentTool.objects.filter(agent=agent).exists()


def test_assigning_another_organisations_knowledge_base_and_guardrail_is_refused(
    org, other_org, editor_client
):
    agent = AgentFactory(organization=org)
    kb = KnowledgeBaseFactory(organization=other_org)
    guardrail = GuardrailFactory(organization=other_org)
    response = editor_client.post(
        f"/api/v1/agents/{agent.pk}/knowledge/", {"knowledge_base": kb.pk}, format="json"
    )
    assert_error(response, 404, fields=("knowledge_base",))
    response = editor_client.post(
        f"/api/v1/agents/{agent.pk}/guardrails/", {"guardrail": guardrail.pk}, format="json"
    )
    assert_error(response, 404, fields=("guardrail",))


def test_builtin_tool_can_be_assigned_and_duplicates_are_refused(org, editor_client):
    agent = AgentFactory(organization=org)
    builtin = Tool.objects.get(organization__isnull=True, slug="vat-calculator")
    url = f"/api/v1/agents/{agent.pk}/tools/"
    response = editor_client.post(url, {"tool": builtin.pk}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["tool_slug"] == "vat-calculator"
    body = assert_error(editor_client.post(url, {"tool": builtin.pk}, format="json"), 409, fields=("tool",))
    assert "already assigned" in body["message"]


def test_new_assignments_are_appended_and_can_be_reordered(org, editor_client):
    agent = AgentFactory(organization=org)
    url = f"/api/v1/agents/{agent.pk}/guardrails/"
    ids = [
        editor_client.post(url, {"guardrail": GuardrailFactory(organization=org).pk}, format="json").json()[
            "id"
        ]
        for _ in range(3)
    ]
    assert [r["order"] for r in results(editor_client.get(url))] == [0, 1, 2]
    response = editor_client.post(f"{url}reorder/", {"assignments": [ids[2], ids[0], ids[1]]}, format="json")
    assert response.status_code == 200, response.json()
    assert [r["id"] for r in results(editor_client.get(url))] == [ids[2], ids[0], ids[1]]
    assert_error(editor_client.post(f"{url}reorder/", {"assignments": ids[:2]}, format="json"), 409)
    assert_error(editor_client.post(f"{url}reorder/", {"assignments": [*ids, ids[0]]}, format="json"), 400)


def test_assignment_target_cannot_change(org, editor_client):
    """A valid body clashing with the stored assignment: 409 ``conflict`` naming ``tool`` (a 400 told a
    fuzzer its schema-valid body was malformed)."""
    assignment = AgentToolFactory(agent=AgentFactory(organization=org))
    other = ToolFactory(organization=org)
    response = editor_client.patch(
        f"/api/v1/agents/{assignment.agent_id}/tools/{assignment.pk}/", {"tool": other.pk}, format="json"
    )
    body = assert_error(response, 409, fields=("tool",))
    assert body["code"] == "conflict"
    same = editor_client.patch(
        f"/api/v1/agents/{assignment.agent_id}/tools/{assignment.pk}/",
        {"tool": assignment.tool_id, "order": 3},
        format="json",
    )
    assert same.status_code == 200, same.content


def test_assignment_of_another_agent_is_not_reachable(org, editor_client):
    """An assignment is only found under its own agent."""
    first, second = AgentFactory(organization=org), AgentFactory(organization=org)
    assignment = AgentToolFactory(agent=first)
    assert_error(editor_client.get(f"/api/v1/agents/{second.pk}/tools/{assignment.pk}/"), 404)
