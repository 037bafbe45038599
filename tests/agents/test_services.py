"""Agent, persona and tool services: the rules every door (API, admin, commands) shares."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents import services
from agents.models import AgentStatus, LearningExample, LearningExampleStatus
from personas.services import persona_create
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import ConflictError as Conflict
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolFactory,
)
from tools.models import Tool

pytestmark = pytest.mark.django_db


def test_agent_create_derives_a_unique_slug_and_is_audited(org, editor):
    """The slug comes from the name; creation writes an audit event with the new state."""
    agent = services.agent_create(organization=org, actor=editor, name="VAT helper", type="tax")
    assert agent.slug == "vat-helper" and agent.status == AgentStatus.DRAFT and agent.owner == editor
    event = AuditEvent.objects.get(action="agent.create", object_id=str(agent.pk))
    assert event.after["name"] == "VAT helper" and event.actor_user == editor


def test_agent_create_duplicate_name_has_a_human_message(org, editor):
    """A second agent with the same name gets a clear field error."""
    services.agent_create(organization=org, actor=editor, name="VAT helper")
    with pytest.raises(ValidationError) as exc:
        services.agent_create(organization=org, actor=editor, name="VAT helper")
    assert exc.value.message_dict["name"] == [
        "An agent named 'VAT helper' already exists in this organisation."
    ]


def test_agent_provider_must_be_in_the_same_organisation(org, other_org, editor):
    """Another organisation's provider is refused."""
    foreign = ModelProviderFactory(organization=other_org)
    with pytest.raises(ValidationError) as exc:
        services.agent_create(organization=org, actor=editor, name="A", provider=foreign)
    assert "provider" in exc.value.message_dict


def test_agent_delete_with_executions_is_a_conflict(org, editor):
    """An agent that has run cannot be deleted: deprecate it instead."""
    agent = AgentFactory(organization=org)
    ExecutionFactory(agent=agent)
    with pytest.raises(Conflict, match="deprecate it instead"):
        services.agent_delete(agent=agent, actor=editor)


def test_agent_activate_needs_a_release_which_needs_an_active_persona(org, editor):
    """Activation without a release is refused, and so is a release without an active persona; with
    both the activation is audited."""
    agent = AgentFactory(organization=org)
    with pytest.raises(Conflict, match="has no release yet"):
        services.agent_activate(agent=agent, actor=editor)
    with pytest.raises(Conflict, match="no active persona"):
        services.release_create(agent=agent, actor=editor)
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="You are careful.")
    services.release_create(agent=agent, actor=editor)
    agent = services.agent_activate(agent=agent, actor=editor)
    assert agent.status == AgentStatus.ACTIVE
    assert AuditEvent.objects.filter(action="agent.activate", object_id=str(agent.pk)).exists()
    assert services.agent_deprecate(agent=agent, actor=editor).status == AgentStatus.DEPRECATED


def test_agent_clone_copies_personas_and_assignments(org, editor):
    """A clone is a draft with the same persona versions and assignments, under a new name."""
    agent = AgentFactory(organization=org, status="active")
    PersonaFactory(agent=agent, version=1)
    PersonaFactory(agent=agent, version=2, is_active=True)
    services.assignment_create(
        kind=services.TOOL, agent=agent, tool=ToolFactory(organization=org), actor=editor
    )
    services.assignment_create(
        kind=services.KNOWLEDGE,
        agent=agent,
        knowledge_base=KnowledgeBaseFactory(organization=org),
        actor=editor,
        top_k=3,
    )
    services.assignment_create(
        kind=services.GUARDRAIL, agent=agent, guardrail=GuardrailFactory(organization=org), actor=editor
    )
    clone = services.agent_clone(agent=agent, actor=editor, name="VAT helper (copy)")
    assert clone.status == AgentStatus.DRAFT and clone.slug == "vat-helper-copy"
    assert [(p.version, p.is_active) for p in clone.personas.order_by("version")] == [(1, False), (2, True)]
    assert clone.tool_assignments.count() == 1
    assert clone.knowledge_assignments.get().top_k == 3
    assert clone.guardrail_assignments.count() == 1


def test_assigning_another_organisations_tool_is_refused(org, other_org, editor):
    """Tools of other organisations cannot be assigned; built-in tools can."""
    agent = AgentFactory(organization=org)
    with pytest.raises(ValidationError) as exc:
        services.assignment_create(
            kind=services.TOOL, agent=agent, tool=ToolFactory(organization=other_org), actor=editor
        )
    assert "tool" in exc.value.message_dict
    builtin = Tool.objects.filter(organization__isnull=True).first() or ToolFactory(
        organization=None, kind="builtin", builtin_key="vat", url_template="", slug="vat-test-builtin"
    )
    assert services.assignment_create(kind=services.TOOL, agent=agent, tool=builtin, actor=editor).order == 0


def test_feedback_with_correction_proposes_a_learning_example(org, editor):
    """A thumbs down with a correction creates a proposed learning example from the execution's input."""
    execution = ExecutionFactory(agent=AgentFactory(organization=org))
    feedback = services.feedback_create(
        execution=execution, actor=editor, rating=-1, correction="Better answer"
    )
    example = LearningExample.objects.get(source_feedback=feedback)
    assert example.status == LearningExampleStatus.PROPOSED
    assert (example.input, example.output) == (execution.input, "Better answer")
    assert services.learning_example_approve(example=example, actor=editor).status == "approved"
