"""The runtime's cache of loaded agents: used while nothing changed, never after a change, whatever the
write path (instance save/delete, queryset update/delete, bulk create/update, the services)."""

from __future__ import annotations

import pytest

from agents import services as agent_services
from agents.models import Agent, AgentGuardrail, AgentKnowledge, AgentTool, Execution, ModelProvider
from agents.runtime import AgentNotRunnable, execute, loading
from guardrails.models import Guardrail
from personas import services as persona_services
from prisma_glow.config_stamp import bump
from prisma_glow.tenancy.models import Organization
from tests.agents.runtime.conftest import builtin
from tests.factories import (
    AgentFactory,
    KnowledgeBaseFactory,
    LearningExampleFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolFactory,
    release_now,
)

pytestmark = pytest.mark.django_db


def stamp(org) -> object:
    return Organization.objects.values_list("config_stamp", flat=True).get(pk=org.pk)


def test_second_load_costs_one_query_and_returns_the_kept_configuration(vat_agent, django_assert_num_queries):
    """The active release: five queries when this process does not keep it (the stamp with the active
    release's id, then ``configuration_from``'s release, tools, knowledge bases and budgets; the
    offline engine has no provider row), one (the stamp) when it does. The draft: one plus the seven
    of ``agent_run_configuration``, then one."""
    loading.cache.clear()
    with django_assert_num_queries(5):
        first = loading.load(vat_agent)
    with django_assert_num_queries(1):
        again = loading.load(vat_agent.pk)
    assert again is first and first.release == vat_agent.active_release
    with django_assert_num_queries(8):
        draft = loading.load(vat_agent, draft=True)
    with django_assert_num_queries(1):
        assert loading.load(vat_agent, draft=True) is draft
    assert draft is not first and draft.release is None
    # Another persona version asked for is another entry.
    PersonaFactory(agent=vat_agent, version=2, is_active=False, system_prompt="Version two.")
    assert loading.load(vat_agent, persona=2, draft=True).persona.system_prompt == "Version two."
    assert loading.load(vat_agent, draft=True).persona.version == 1
    assert loading.load(vat_agent).persona.version == 1


def test_a_release_with_a_provider_costs_one_query_more(make_agent, org, django_assert_num_queries):
    provider = ModelProviderFactory(organization=org, name="Local", kind="offline")
    agent = make_agent(provider=provider)
    loading.cache.clear()
    with django_assert_num_queries(6):
        loaded = loading.load(agent)
    assert loaded.provider_row == provider and loaded.release is not None


def test_loaded_configuration_cannot_be_changed_by_a_run(vat_agent):
    loaded = loading.load(vat_agent)
    with pytest.raises(AttributeError):
        loaded.tools.append(builtin("audit-sample-size"))  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="cannot assign"):
        loaded.persona = None  # type: ignore[misc]


# Each change below is made after the agent was loaded; the next load of the draft must see it; the
# active release sees only those of the live parts it does not pin (LIVE).


def _persona_edited(agent, editor):
    persona = agent.personas.get(is_active=True)
    persona.system_prompt = "You are the firm's VAT partner."
    persona.save()
    return lambda loaded: loaded.persona.system_prompt == "You are the firm's VAT partner."


def _persona_activated(agent, editor):
    # persona_activate deactivates the previous version with QuerySet.update().
    newer = PersonaFactory(agent=agent, version=2, is_active=False, system_prompt="Version two.")
    persona_services.persona_activate(persona=newer, actor=editor)
    return lambda loaded: loaded.persona.version == 2


def _guardrail_disabled(agent, editor):
    guardrail = Guardrail.objects.get(organization=agent.organization, name="Citations")
    guardrail.enabled = False
    guardrail.save()
    return lambda loaded: "Citations" not in [g.name for g in loaded.guardrails]


def _guardrails_updated_in_bulk(agent, editor):
    Guardrail.objects.filter(organization=agent.organization, kind="pii").update(action="block")
    return lambda loaded: [g.action for g in loaded.guardrails if g.kind == "pii"] == ["block"]


def _guardrail_unassigned(agent, editor):
    AgentGuardrail.objects.filter(agent=agent, guardrail__name="Disclaimer").get().delete()
    return lambda loaded: "Disclaimer" not in [g.name for g in loaded.guardrails]


def _guardrail_assignments_deleted_in_bulk(agent, editor):
    AgentGuardrail.objects.filter(agent=agent).delete()
    return lambda loaded: loaded.guardrails == ()


def _tools_assigned_in_bulk(agent, editor):
    AgentTool.objects.bulk_create([AgentTool(agent=agent, tool=builtin("audit-sample-size"), order=9)])
    return lambda loaded: "audit-sample-size" in [t.slug for t in loaded.tools]


def _builtin_tool_disabled(agent, editor):
    tool = builtin("vat-iban-validator")
    tool.is_enabled = False
    tool.save()
    return lambda loaded: "vat-iban-validator" not in [t.slug for t in loaded.tools]


def _knowledge_reordered_in_bulk(agent, editor):
    assignment = AgentKnowledge.objects.get(agent=agent)
    assignment.top_k = 17
    AgentKnowledge.objects.bulk_update([assignment], ["top_k"])
    return lambda loaded: [a.top_k for a in loaded.knowledge] == [17]


def _knowledge_base_reconfigured(agent, editor):
    kb = AgentKnowledge.objects.get(agent=agent).knowledge_base
    kb.search_config = "german"
    kb.save()
    return lambda loaded: [a.knowledge_base.search_config for a in loaded.knowledge] == ["german"]


def _knowledge_assigned_through_the_service(agent, editor):
    kb = KnowledgeBaseFactory(organization=agent.organization, name="Transfer pricing")
    agent_services.assignment_create(
        kind=agent_services.KNOWLEDGE, agent=agent, knowledge_base=kb, actor=editor
    )
    return lambda loaded: "Transfer pricing" in [a.knowledge_base.name for a in loaded.knowledge]


def _example_approved(agent, editor):
    example = LearningExampleFactory(agent=agent, status="proposed", input="Q?", output="A.")
    agent_services.learning_example_approve(example=example, actor=editor)
    return lambda loaded: loaded.examples == (("Q?", "A."),)


def _default_provider_taken_over(agent, editor):
    # provider_create takes the default over from the previous one with QuerySet.update().
    ModelProvider.objects.create(organization=agent.organization, name="Old default", is_default=True)
    loading.load(agent)
    agent_services.provider_create(
        organization=agent.organization, actor=editor, name="New default", kind="offline", is_default=True
    )
    return lambda loaded: loaded.provider_row is not None and loaded.provider_row.name == "New default"


def _agent_model_changed(agent, editor):
    agent_services.agent_update(agent=agent, actor=editor, model="gpt-4.1-mini")
    return lambda loaded: loaded.agent.model == "gpt-4.1-mini"


CHANGES = [
    _persona_edited,
    _persona_activated,
    _guardrail_disabled,
    _guardrails_updated_in_bulk,
    _guardrail_unassigned,
    _guardrail_assignments_deleted_in_bulk,
    _tools_assigned_in_bulk,
    _builtin_tool_disabled,
    _knowledge_reordered_in_bulk,
    _knowledge_base_reconfigured,
    _knowledge_assigned_through_the_service,
    _example_approved,
    _default_provider_taken_over,
    _agent_model_changed,
]


#: Changes to what a release does not pin: the tools' switch and the knowledge bases are read live.
LIVE = [_builtin_tool_disabled, _knowledge_base_reconfigured]
#: Changes to what a release pins.
PINNED = [change for change in CHANGES if change not in LIVE]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_a_change_is_seen_by_the_next_run(vat_agent, editor, change):
    """The draft (what a test run runs) is the live rows: the next load sees any change."""
    before = loading.load(vat_agent, draft=True)
    check = change(vat_agent, editor)
    assert not check(before), "the change should not show in what was loaded before it"
    assert check(loading.load(vat_agent, draft=True))


@pytest.mark.parametrize("change", PINNED, ids=[c.__name__.strip("_") for c in PINNED])
def test_a_change_reaches_the_active_release_only_once_released(vat_agent, editor, change):
    """An API run runs the active release's snapshot: a change to what it pins is not seen (though
    the stamp has moved and the release is read again) until a new release is activated."""
    before = loading.load(vat_agent)
    check = change(vat_agent, editor)
    after = loading.load(vat_agent)
    assert after is not before, "the stamp moved: the release is read again"
    assert after.release == before.release and not check(after)
    release_now(vat_agent)
    released = loading.load(vat_agent)
    assert released.release.number == 2 and check(released)


@pytest.mark.parametrize("change", LIVE, ids=[c.__name__.strip("_") for c in LIVE])
def test_a_change_to_a_live_part_reaches_the_active_release_at_once(vat_agent, editor, change):
    before = loading.load(vat_agent)
    check = change(vat_agent, editor)
    after = loading.load(vat_agent)
    assert after.release == before.release and check(after)


def test_a_rotated_provider_key_and_tool_secret_reach_the_active_release_at_once(make_agent, org):
    """Secrets are never in a snapshot: a release runs with the provider's and the tool's current ones."""
    provider = ModelProviderFactory(organization=org, name="Remote", kind="offline", api_key="sk-old")
    agent = make_agent(provider=provider, tools=())
    tool = ToolFactory(organization=org, name="Register", slug="register", secret_headers='{"X-Key": "old"}')
    AgentTool.objects.create(agent=agent, tool=tool, order=1)
    release_now(agent)
    assert loading.load(agent).provider_row.api_key == "sk-old"
    provider.api_key = "sk-new"
    provider.save()
    tool.secret_headers = '{"X-Key": "new"}'
    tool.save()
    loaded = loading.load(agent)
    assert loaded.release.number == 2
    assert loaded.provider_row.api_key == "sk-new"
    assert [t.secret_headers for t in loaded.tools] == ['{"X-Key": "new"}']


def _kept(agent, *, release=False):
    """What this process keeps, under the organisation's current stamp, for the agent's draft with its
    active persona or (``release``) for its active release."""
    release_id = (
        Agent.objects.values_list("active_release_id", flat=True).get(pk=agent.pk) if release else None
    )
    return loading.cache.get((agent.pk, None, release_id), loading.current_stamp(agent.pk))


def _test_run(agent):
    return execute(agent, "What is the VAT on €100 at 20%?", source="console", is_test=True)


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_a_run_after_a_change_runs_with_it(vat_agent, editor, change):
    """A test run reads the organisation's stamp first: after a change nothing is kept under the new
    stamp, so the run loads the draft again (and keeps it), and is recorded once."""
    _test_run(vat_agent)
    check = change(vat_agent, editor)
    assert _kept(vat_agent) is None
    execution = _test_run(vat_agent)
    assert execution.status == "completed", execution.error
    assert execution.release is None
    assert check(_kept(vat_agent))
    assert Execution.objects.filter(agent=vat_agent).count() == 2


@pytest.mark.parametrize("change", PINNED, ids=[c.__name__.strip("_") for c in PINNED])
def test_an_api_run_after_a_change_runs_the_active_release(vat_agent, editor, change):
    """After a change an API run reads the active release again (the stamp moved) and runs it
    unchanged; once the change is released and activated, the next API run runs it."""
    first = execute(vat_agent, "What is the VAT on €100 at 20%?", source="api")
    check = change(vat_agent, editor)
    assert _kept(vat_agent, release=True) is None
    execution = execute(vat_agent, "What is the VAT on €100 at 20%?", source="api")
    assert execution.status == "completed", execution.error
    assert execution.release == first.release and not check(_kept(vat_agent, release=True))
    release_now(vat_agent)
    execution = execute(vat_agent, "What is the VAT on €100 at 20%?", source="api")
    assert execution.release.number == 2 and check(_kept(vat_agent, release=True))


def test_a_run_sends_the_edited_persona(vat_agent, editor):
    """The edited prompt goes out in a test run at once, in an API run only once released."""
    question = "What is the VAT on €100 at 20%?"
    execute(vat_agent, question, source="api")
    _persona_edited(vat_agent, editor)

    def system_prompt(execution):
        messages = execution.steps.filter(kind="model_call").order_by("ordinal").first().input["messages"]
        return messages[0]["content"]

    assert not system_prompt(execute(vat_agent, question, source="api")).startswith("You are the firm's VAT")
    assert system_prompt(_test_run(vat_agent)).startswith("You are the firm's VAT partner.")
    release_now(vat_agent)
    assert system_prompt(execute(vat_agent, question, source="api")).startswith(
        "You are the firm's VAT partner."
    )


def test_a_deprecated_agent_stops_running_at_once(vat_agent, editor):
    assert execute(vat_agent, "What is the VAT on €100 at 20%?", source="api").status == "completed"
    agent_services.agent_deprecate(agent=vat_agent, actor=editor)
    with pytest.raises(AgentNotRunnable, match="deprecated"):
        execute(vat_agent, "What is the VAT on €100 at 20%?", source="api")
    assert Execution.objects.filter(agent=vat_agent).count() == 1  # the refused run left no record


def test_a_refusal_by_the_kept_configuration_is_confirmed_on_the_current_one(vat_agent, editor):
    """A draft tested in the console is kept as a draft; once activated elsewhere, the API runs it."""
    Agent.objects.filter(pk=vat_agent.pk).update(status="draft")
    assert execute(vat_agent, "What is the VAT on €100 at 20%?", source="console", is_test=True).is_test
    assert _kept(vat_agent).agent.status == "draft"
    agent_services.agent_activate(agent=vat_agent, actor=editor)
    assert execute(vat_agent, "What is the VAT on €100 at 20%?", source="api").status == "completed"


def test_a_change_in_one_organisation_keeps_the_others_entries(vat_agent, other_org):
    other_agent = AgentFactory(organization=other_org, status="active")
    PersonaFactory(agent=other_agent, is_active=True)
    loading.load(vat_agent)
    mine, theirs = stamp(vat_agent.organization), stamp(other_org)
    other_agent.name = "Renamed elsewhere"
    other_agent.save()
    assert stamp(vat_agent.organization) == mine and stamp(other_org) != theirs


def test_a_change_to_a_builtin_tool_renews_every_organisation(vat_agent, other_org):
    mine, theirs = stamp(vat_agent.organization), stamp(other_org)
    tool = builtin("currency-calculator")
    tool.description = "Adds, subtracts and converts amounts."
    tool.save()
    assert stamp(vat_agent.organization) != mine and stamp(other_org) != theirs


def test_an_update_that_matches_nothing_renews_nothing(vat_agent):
    before = stamp(vat_agent.organization)
    assert Guardrail.objects.filter(name="No such guardrail").update(enabled=False) == 0
    bump([])
    assert stamp(vat_agent.organization) == before


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = loading.LoadedCache(size=2)
    cache.put((1, None), "s", "one")
    cache.put((2, None), "s", "two")
    assert cache.get((1, None), "s") == "one"  # 1 is now the most recently used
    cache.put((3, None), "s", "three")
    assert len(cache) == 2
    assert cache.get((2, None), "s") is None and cache.get((1, None), "s") == "one"
    assert cache.get((1, None), "another stamp") is None
