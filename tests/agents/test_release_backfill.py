"""agents 0011 gives every agent that is active today a release 1 of its current configuration — the
same snapshot and hash that ``agents.releases`` gives — and activates it; a draft gets none."""

from __future__ import annotations

import importlib
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from agents.models import Agent, AgentTool, Release
from agents.releases import content_hash, snapshot_of, stored_redactions
from agents.selectors import agent_run_configuration, approved_examples
from tests.agents.runtime.conftest import guardrail, make_agent, vat_kb  # noqa: F401 (fixtures)
from tests.factories import LearningExampleFactory, ModelProviderFactory, ToolFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("agents.migrations.0011_release_backfill")


def _historical_apps():
    """The models as of 0011 (Django's migration state), as the migration sees them when it runs."""
    executor = MigrationExecutor(connection)
    return executor.loader.project_state(("agents", "0011_release_backfill")).apps


def _unreleased(agent):
    """The agent as it was before releases: active, no release."""
    Agent.objects.filter(pk=agent.pk).update(active_release=None)
    Release.objects.filter(agent=agent).delete()


def test_an_active_agent_gets_release_1_exactly_as_agents_releases_makes_it(org, make_agent):  # noqa: F811
    provider = ModelProviderFactory(organization=org, kind="offline", api_key="sk-secret", default_model="m1")
    active = make_agent(provider=provider, status="draft", guards=None)
    tool = ToolFactory(organization=org, name="Register", slug="register", secret_headers='{"X": "s"}')
    AgentTool.objects.create(agent=active, tool=tool, order=4, settings={"timeout": 2})
    guardrail(active, 0, name="PII", kind="pii", action="redact", config={})
    guardrail(active, 1, name="Falcon", kind="keywords", action="block", config={"keywords": ["falcon"]})
    LearningExampleFactory(
        agent=active, status="approved", input="Is [IBAN_1] valid?", output="Yes.",
        redactions=json.dumps({"[IBAN_1]": "DE89370400440532013000"}),
    )  # fmt: skip
    LearningExampleFactory(agent=active, status="approved", input="Plain?", output="Plain.")
    Agent.objects.filter(pk=active.pk).update(status="active")
    draft = make_agent(name="Draft", status="draft")
    _unreleased(active)

    expected, mappings = snapshot_of(agent_run_configuration(agent=active), approved_examples(agent=active))
    migration.backfill(_historical_apps(), None)

    release = Release.objects.get(agent=active)
    assert release.number == 1 and release.persona == active.personas.get(is_active=True)
    assert release.snapshot == expected
    assert release.content_hash == content_hash(expected, mappings)
    assert stored_redactions(release) == mappings
    assert Agent.objects.get(pk=active.pk).active_release == release
    assert not Release.objects.filter(agent=draft).exists()
    assert Agent.objects.get(pk=draft.pk).active_release is None
    # Run again, it leaves an agent that has its release alone.
    migration.backfill(_historical_apps(), None)
    assert Release.objects.count() == 1


def test_an_agent_without_examples_hashes_like_agents_releases_and_runs(make_agent):  # noqa: F811
    """No example: nothing stored for the mappings; the hash still matches, and an API run runs it."""
    from agents.runtime import execute

    agent = make_agent()
    _unreleased(agent)
    expected, mappings = snapshot_of(agent_run_configuration(agent=agent), approved_examples(agent=agent))
    migration.backfill(_historical_apps(), None)
    # 0014 then marks the active release approved (activated): without that, no API run would run it.
    with connection.cursor() as cursor:
        cursor.execute(importlib.import_module("agents.migrations.0014_release_activated_at").MARK_APPROVED)
    release = Release.objects.get(agent=agent)
    assert release.snapshot == expected and release.content_hash == content_hash(expected, mappings)
    assert release.example_redactions == "" and release.activated_at == release.created_at
    execution = execute(agent, "What is the VAT on €100 at 20%?", source="api")
    assert execution.status == "completed" and execution.release == release


def test_an_active_agent_without_an_active_persona_gets_no_release(make_agent):  # noqa: F811
    agent = make_agent()
    _unreleased(agent)
    agent.personas.update(is_active=False)
    migration.backfill(_historical_apps(), None)
    assert not Release.objects.filter(agent=agent).exists()


def test_0014_marks_active_and_approved_releases_activated_and_no_other(org, make_agent):  # noqa: F811
    """agents 0014's data step: a release is marked activated when it is an agent's active release
    (at its creation) or has an approved activation request (when that was decided); a release only
    requested, refused or never asked for stays unapproved."""
    from agents.models import ActivationRequest

    step = importlib.import_module("agents.migrations.0014_release_activated_at").MARK_APPROVED
    agent = make_agent()
    first = agent.active_release
    second = Release.objects.create(
        organization=org, agent=agent, number=2, persona=first.persona, snapshot=first.snapshot,
        content_hash="2" * 64,
    )  # fmt: skip
    third = Release.objects.create(
        organization=org, agent=agent, number=3, persona=first.persona, snapshot=first.snapshot,
        content_hash="3" * 64,
    )  # fmt: skip
    decided = first.created_at.replace(year=2026, month=1, day=2)
    ActivationRequest.objects.create(
        organization=org, agent=agent, release=second, status="approved", decided_at=decided
    )
    ActivationRequest.objects.create(
        organization=org, agent=agent, release=third, status="refused", decided_at=decided
    )
    Release.objects.filter(agent=agent).update(activated_at=None)
    with connection.cursor() as cursor:
        cursor.execute(step)
    marked = dict(Release.objects.filter(agent=agent).values_list("number", "activated_at"))
    assert marked == {1: first.created_at, 2: decided, 3: None}
