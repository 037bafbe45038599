"""``agents.selectors.agent_run_configuration``: the one reader of an agent's run configuration."""

from __future__ import annotations

import pytest

from agents.runtime import AgentNotRunnable, PersonaNotFound, loading
from agents.selectors import agent_run_configuration
from tests.factories import PersonaFactory

pytestmark = pytest.mark.django_db


def test_it_reads_what_a_run_uses_in_a_fixed_number_of_queries(vat_agent, django_assert_num_queries):
    """Seven queries (persona with agent and provider, three assignment lists, examples, budgets), never
    cached: the runtime's kept configuration of the draft (a test run's) is the same reading."""
    loading.cache.clear()
    with django_assert_num_queries(7):
        configuration = agent_run_configuration(agent=vat_agent)
    kept = loading.load(vat_agent, draft=True)
    assert configuration is not kept  # read anew, not the process's cache
    assert configuration.persona == kept.persona and configuration.persona.is_active
    assert [t.slug for t in configuration.tools] == [t.slug for t in kept.tools] and configuration.tools
    assert configuration.guardrails == kept.guardrails and configuration.knowledge == kept.knowledge
    assert configuration.agent.organization.pk == vat_agent.organization_id


def test_a_persona_version_by_number_or_instance(vat_agent):
    second = PersonaFactory(agent=vat_agent, version=2, is_active=False, system_prompt="Version two.")
    assert agent_run_configuration(agent=vat_agent.pk, persona=2).persona == second
    assert agent_run_configuration(agent=vat_agent, persona=second).persona == second


def test_a_missing_persona_is_refused_with_the_reason(vat_agent):
    with pytest.raises(PersonaNotFound, match="no persona version 9"):
        agent_run_configuration(agent=vat_agent, persona=9)
    with pytest.raises(PersonaNotFound, match="not a number"):
        agent_run_configuration(agent=vat_agent, persona="two")
    vat_agent.personas.update(is_active=False)
    with pytest.raises(AgentNotRunnable, match="no active persona"):
        agent_run_configuration(agent=vat_agent)


def test_arguments_are_keyword_only(vat_agent):
    with pytest.raises(TypeError):
        agent_run_configuration(vat_agent)  # type: ignore[misc]
