"""Deletion policy: what a deletion may take with it, and what it must leave readable.

An agent that has run is protected (its executions are the firm's record of what the AI said):
deleting it raises ProtectedError; deprecate it instead. An agent that never ran is deleted with
its personas, assignments and learning examples. Tools, knowledge bases, guardrails and providers
in use by an agent are protected too: unassign them first.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from agents.models import AgentGuardrail, AgentKnowledge, AgentTool, Execution, LearningExample
from personas.models import Persona
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    AgentKnowledgeFactory,
    AgentToolFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    FeedbackFactory,
    LearningExampleFactory,
    PersonaFactory,
)

pytestmark = pytest.mark.django_db


def test_agent_with_executions_cannot_be_deleted_and_its_executions_stay_readable(org):
    """Deleting an agent that has run raises ProtectedError; the executions and steps are intact."""
    agent = AgentFactory(organization=org)
    execution = ExecutionFactory(agent=agent)
    ExecutionStepFactory(execution=execution, ordinal=1)
    FeedbackFactory(execution=execution, rating=-1, correction="The customer accounts for the VAT.")
    with pytest.raises(ProtectedError) as exc, transaction.atomic():
        agent.delete()
    assert execution in exc.value.protected_objects
    stored = Execution.objects.select_related("agent").get(pk=execution.pk)
    assert stored.agent == agent and stored.output == execution.output
    assert stored.steps.count() == 1 and stored.feedback.count() == 1


def test_deprecating_keeps_history_where_deleting_cannot(org):
    """The way out for an agent with history is deprecation: it stays, with its executions."""
    agent = AgentFactory(organization=org, status="active")
    ExecutionFactory(agent=agent)
    agent.status = "deprecated"
    agent.full_clean()
    agent.save()
    assert agent.executions.count() == 1


def test_agent_without_executions_is_deleted_with_what_belongs_to_it(org):
    """Personas, assignments and learning examples go with an agent that never ran."""
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, version=1, is_active=True)
    tool_assignment = AgentToolFactory(agent=agent)
    AgentKnowledgeFactory(agent=agent)
    AgentGuardrailFactory(agent=agent)
    LearningExampleFactory(agent=agent)
    agent.delete()
    assert not Persona.objects.filter(agent_id=agent.pk).exists()
    for model in (AgentTool, AgentKnowledge, AgentGuardrail, LearningExample):
        assert not model.objects.filter(agent_id=agent.pk).exists()
    # The shared tool itself survives: only the assignment went.
    tool_assignment.tool.refresh_from_db()


@pytest.mark.parametrize(
    ("factory", "target"),
    [
        (AgentToolFactory, "tool"),
        (AgentKnowledgeFactory, "knowledge_base"),
        (AgentGuardrailFactory, "guardrail"),
    ],
)
def test_assigned_targets_are_protected(factory, target):
    """A tool, knowledge base or guardrail in use by an agent cannot be deleted."""
    assignment = factory()
    with pytest.raises(ProtectedError), transaction.atomic():
        getattr(assignment, target).delete()
    assignment.delete()
    getattr(assignment, target).delete()


def test_persona_used_by_an_execution_is_protected(org):
    """A persona version that produced an answer stays: the execution references it."""
    persona = PersonaFactory(agent=AgentFactory(organization=org), version=1)
    ExecutionFactory(agent=persona.agent, persona=persona)
    with pytest.raises(ProtectedError), transaction.atomic():
        persona.delete()
