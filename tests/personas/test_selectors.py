"""Persona selectors: the one rule for a locked version, each version's state on the versions page,
the last in-place edit, and what the editor's save will do."""

from __future__ import annotations

import pytest

from agents.services import agent_deprecate, release_create
from personas import selectors
from personas.models import Persona
from personas.selectors import PersonaState, persona_save_outcome, persona_versions
from personas.services import persona_activate, persona_create, persona_update
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record
from tests.factories import AgentFactory, ExecutionFactory, PersonaFactory, release_now

pytestmark = pytest.mark.django_db


def _by_version(agent) -> dict[int, Persona]:
    return {p.version: p for p in persona_versions(agent=agent)}


def test_a_version_no_run_used_and_no_release_holds_is_a_draft(org, editor):
    """A fresh version is a draft: editable, no runs, no releases, no usage text."""
    agent = AgentFactory(organization=org)
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    (v1,) = persona_versions(agent=agent)
    assert v1.state == PersonaState.DRAFT and v1.state.label == "Draft — editable"
    assert not v1.is_used and v1.runs == 0 and v1.release_numbers == [] and v1.usage == ""
    assert v1.is_current and v1.live_release is None  # the agent's active version, but no release
    assert not selectors.persona_is_used(persona=v1)


def test_a_version_runs_used_is_used_and_locked(org, editor):
    """Runs make a version used: the state, the count and the text say so, and the one-version rule
    agrees with the list's."""
    agent = AgentFactory(organization=org)
    v1 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    ExecutionFactory.create_batch(3, agent=agent, persona=v1)
    (row,) = persona_versions(agent=agent)
    assert row.state == PersonaState.USED and row.state.label == "Used — locked"
    assert row.is_used and row.runs == 3 and row.usage == "used by 3 runs"
    assert selectors.persona_is_used(persona=v1)


def test_a_version_a_release_holds_is_used_without_runs(org, editor):
    """A release makes a version used even before any run (issue 17's rule): the list names the
    releases, and only the active release of an active agent makes it live."""
    agent = AgentFactory(organization=org)
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    release_create(agent=agent, actor=editor, notes="Not approved")
    (row,) = persona_versions(agent=agent)
    assert row.state == PersonaState.USED and row.runs == 0
    assert row.release_numbers == [1] and row.usage == "in release 1"
    assert row.live_release is None  # released, never put live

    agent.refresh_from_db()
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="Second", activate=True)
    release_now(agent)  # release 2, live
    rows = _by_version(agent)
    assert rows[2].live_release == 2 and rows[2].is_current and rows[2].usage == "in release 2"
    assert rows[1].live_release is None and not rows[1].is_current

    ExecutionFactory(agent=agent, persona=rows[2])
    persona_activate(persona=rows[1], actor=editor)
    rows = _by_version(agent)
    # Current (the console's) and live (the API's) are different versions now.
    assert rows[1].is_current and rows[1].live_release is None
    assert not rows[2].is_current and rows[2].live_release == 2
    assert rows[2].usage == "used by 1 run and in release 2"

    agent_deprecate(agent=agent, actor=editor)
    agent.refresh_from_db()
    assert _by_version(agent)[2].live_release is None  # a deprecated agent answers no client


def test_release_numbers_are_listed_in_order(org, editor):
    """A version held by several releases names them all, in order."""
    agent = AgentFactory(organization=org)
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    release_create(agent=agent, actor=editor)
    agent.model = "another-model"
    agent.save()
    release_create(agent=agent, actor=editor)
    (row,) = persona_versions(agent=agent)
    assert row.release_numbers == [1, 2] and row.usage == "in releases 1 and 2"


def test_an_in_place_edit_is_recorded_and_shown_with_who_and_when(org, editor, owner):
    """An in-place edit is audited (persona.update, before and after) and the list shows the last
    one; activation is not an edit, and an edit of a locked version leaves the old one unmarked."""
    agent = AgentFactory(organization=org)
    v1 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    assert persona_versions(agent=agent)[0].last_edit_at is None
    persona_update(persona=v1, actor=editor, system_prompt="First, edited")
    persona_update(persona=v1, actor=owner, system_prompt="First, edited twice")
    event = AuditEvent.objects.filter(action="persona.update", object_id=str(v1.pk)).latest("id")
    assert (
        event.before["system_prompt"] == "First, edited"
        and event.after["system_prompt"] == "First, edited twice"
    )
    (row,) = persona_versions(agent=agent)
    assert row.last_edit_by == owner.get_username() and row.last_edit_at == event.at
    assert row.last_edit_id == event.pk

    v2 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="Second")
    persona_activate(persona=v2, actor=editor)
    assert _by_version(agent)[2].last_edit_at is None  # activating is not editing

    ExecutionFactory(agent=agent, persona=v2)
    v3 = persona_update(persona=v2, actor=owner, system_prompt="Third")
    rows = _by_version(agent)
    assert v3.version == 3 and rows[2].last_edit_at is None and rows[3].last_edit_at is None


def test_another_organisations_events_do_not_mark_a_version(org, other_org, editor):
    """The last edit is looked up in the version's own organisation's log only."""
    agent = AgentFactory(organization=org)
    v1 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    # An event of another organisation naming the same persona id (as a stray or forged row would).
    audit_record(organization=other_org, action="persona.update", actor=None, obj=v1, after={"x": 1})
    assert persona_versions(agent=agent)[0].last_edit_at is None


@pytest.mark.parametrize("count", [2, 9])
def test_the_versions_cost_the_same_queries_however_many(org, editor, django_assert_num_queries, count):
    """Three queries whatever the number of versions, runs, releases and edits: the versions with
    their rule, run count and last edit; their releases; the agent's active release."""
    agent = AgentFactory(organization=org)
    for n in range(count):
        persona = PersonaFactory(agent=agent, is_active=n == 0, system_prompt=f"Version {n}")
        if n % 2:
            persona_update(persona=persona, actor=editor, tone=f"tone {n}")  # in place: still unused
        ExecutionFactory.create_batch(2, agent=agent, persona=persona)
    release_now(agent)
    agent = type(agent).objects.get(pk=agent.pk)
    with django_assert_num_queries(3):
        rows = persona_versions(agent=agent)
    assert len(rows) == count and all(r.runs == 2 for r in rows)
    assert sum(r.last_edit_at is not None for r in rows) == count // 2


def test_save_outcome_says_in_place_or_next_version(org, editor):
    """The editor's notice: a new version is N+1; an unused version changes in place; a used one
    stays and the save creates N+1, with the reason."""
    agent = AgentFactory(organization=org)
    assert persona_save_outcome(agent=agent).version == 1
    v1 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="First")
    outcome = persona_save_outcome(agent=agent, persona=v1)
    assert outcome.in_place and outcome.version == 1
    persona_create(agent=agent, actor=editor, name="Default", system_prompt="Second")
    ExecutionFactory(agent=agent, persona=v1)
    release_create(agent=agent, actor=editor)  # holds v1, the active version
    outcome = persona_save_outcome(agent=agent, persona=v1)
    assert not outcome.in_place and outcome.version == 3
    assert outcome.usage == "used by 1 run and in release 1"
    assert persona_save_outcome(agent=agent).version == 3
