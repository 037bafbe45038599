"""``manage.py seed_demo_evaluations``: every demo agent gets a suite of at least eight cases that passes
on the offline engine, run once against its release; running it again changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent
from evaluations.models import Case, EvalRun, Suite
from prisma_glow.audit.services import audit_verify_chain
from prisma_glow.tenancy.models import Organization


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.delenv("PRISMA_GLOW_DEMO_USERNAME", raising=False)
    monkeypatch.delenv("PRISMA_GLOW_DEMO_PASSWORD", raising=False)


def seed_evaluations() -> str:
    out = StringIO()
    call_command("seed_demo_evaluations", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_every_demo_agent_gets_a_suite_that_passes_on_the_offline_engine(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}  # as `make run` seeds
    call_command("seed_demo", stdout=StringIO())
    out = seed_evaluations()
    organization = Organization.objects.get(slug="demo")
    agents = Agent.objects.filter(organization=organization)
    assert agents.count() == 4
    for agent in agents:
        suite = Suite.objects.get(agent=agent)
        assert Case.objects.filter(suite=suite).count() >= 8
        run = EvalRun.objects.get(suite=suite)
        assert run.status == "passed", (
            agent.name,
            list(run.results.filter(passed=False).values("case_name", "verdicts")),
        )
        assert run.done == run.total and run.pass_rate == 1
        expected = agent.active_release or agent.releases.order_by("-number").first()
        assert run.release == expected
        assert set(run.results.values_list("execution__source", flat=True)) == {"eval"}
    assert out.count(" passed (") == 4
    # The draft agent got a release to evaluate, and stays a draft.
    reviewer = agents.get(slug="engagement-letter-reviewer")
    assert reviewer.status == "draft" and reviewer.active_release is None and reviewer.releases.count() == 1

    before = (Case.objects.count(), EvalRun.objects.count())
    assert seed_evaluations() == ""
    assert (Case.objects.count(), EvalRun.objects.count()) == before
    assert audit_verify_chain(organization) == []


@pytest.mark.django_db
def test_without_the_demo_firm_it_says_what_to_run_first():
    with pytest.raises(CommandError, match="run `manage.py seed_demo --org demo` first"):
        seed_evaluations()
