"""Runs end to end: each case through the runtime (source ``eval``, the release pinned), checks
applied, progress and totals, failures recorded as failed cases, the real worker, comparison."""

from __future__ import annotations

import datetime as dt

import pytest
from django.tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from agents.models import Execution
from evaluations import services
from evaluations.models import CaseResult, EvalRun
from evaluations.selectors import run_comparison
from prisma_glow.audit.models import AuditEvent
from prisma_glow.worker.runner import LeasedWorker
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case
from tests.factories import release_now


def test_a_run_runs_every_case_against_the_release_and_records_each_check(suite, cases, vat_agent, editor):
    """With the immediate backend the run is done when created: each case has an execution of source
    ``eval`` on the pinned release, the checks' verdicts with reasons, and the totals."""
    release = vat_agent.active_release
    run = services.run_create(suite=suite, actor=editor, release=release)
    run.refresh_from_db()
    results = {r.case_name: r for r in CaseResult.objects.filter(run=run).select_related("execution")}
    assert set(results) == {"Reverse charge", "Cites the manual", "VAT computed", "Impossible"}
    for name in ("Reverse charge", "Cites the manual", "VAT computed"):
        assert results[name].passed, (name, results[name].verdicts, results[name].error)
    impossible = results["Impossible"]
    assert not impossible.passed
    assert impossible.verdicts == [
        {"kind": "contains", "passed": False, "reason": "The answer does not contain “canteen”."}
    ]
    for result in results.values():
        execution = result.execution
        assert (execution.source, execution.is_test, execution.release_id) == ("eval", True, release.pk)
        assert execution.actor_user_id == editor.pk
    assert (run.status, run.done, run.total, run.passed_count) == ("failed", 4, 4, 3)
    assert str(run.pass_rate) == "0.750" and run.must_pass_failures == 0
    assert run.latency_p50_ms is not None and run.latency_p95_ms >= run.latency_p50_ms
    assert run.started_at and run.finished_at and run.requested_by == editor
    finish = AuditEvent.objects.get(action="evaluation_run.finish")
    assert finish.after["release_hash"] == release.content_hash and finish.after["status"] == "failed"


def test_a_run_passes_when_the_must_pass_cases_and_the_threshold_pass(suite, cases, vat_agent):
    cases[3].delete()
    run = services.run_create(suite=suite, actor=None)
    run.refresh_from_db()
    assert (run.status, str(run.pass_rate), run.release_id) == (
        "passed",
        "1.000",
        vat_agent.active_release_id,
    )


def test_a_failing_must_pass_case_fails_the_run_whatever_the_rate(suite, vat_agent):
    for n in range(9):
        add_case(suite, f"Fine {n}", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}])
    add_case(
        suite, "Key", REVERSE_CHARGE_Q, [{"kind": "contains", "text": "nowhere to be found"}], must_pass=True
    )
    run = services.run_create(suite=suite, actor=None)
    run.refresh_from_db()
    assert (run.status, str(run.pass_rate), run.must_pass_failures) == ("failed", "0.900", 1)


def test_a_case_whose_run_is_refused_is_a_failed_case_with_the_reason_not_a_crashed_run(suite, vat_agent):
    add_case(suite, "Too long", "x" * 20_001, [{"kind": "not_blocked"}])
    add_case(suite, "Fine", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}])
    run = services.run_create(suite=suite, actor=None)
    run.refresh_from_db()
    too_long = run.results.get(case_name="Too long")
    assert not too_long.passed and too_long.execution is None
    assert too_long.error.startswith("The run was refused: The input is too long (20001 characters")
    assert run.results.get(case_name="Fine").passed
    assert (run.status, run.done) == ("failed", 2)


def test_the_case_as_of_date_is_the_runs(suite, vat_agent):
    add_case(suite, "Dated", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}], as_of=dt.date(2024, 3, 1))
    run = services.run_create(suite=suite, actor=None)
    assert run.results.get().execution.as_of == dt.date(2024, 3, 1)


def test_a_blocked_run_passes_a_blocked_check_by_that_guardrail(suite, vat_agent):
    from tests.agents.runtime.conftest import guardrail

    guardrail(
        vat_agent, 5, name="No crypto", kind="keywords", action="block", config={"keywords": ["bitcoin"]}
    )
    release = release_now(vat_agent)
    add_case(
        suite, "Blocked", "Can we take bitcoin as payment?", [{"kind": "blocked", "guardrail": "No crypto"}]
    )
    add_case(suite, "Wrong one", "Can we take bitcoin as payment?", [{"kind": "blocked", "guardrail": "PII"}])
    run = services.run_create(suite=suite, actor=None, release=release)
    blocked, wrong = run.results.get(case_name="Blocked"), run.results.get(case_name="Wrong one")
    assert blocked.passed and blocked.execution.status == "blocked"
    assert not wrong.passed and "blocked by No crypto" in wrong.verdicts[0]["reason"]


def test_a_run_is_refused_without_cases_or_release(suite, vat_agent, make_agent):
    from prisma_glow.exceptions import ConflictError

    with pytest.raises(ConflictError, match="no case yet"):
        services.run_create(suite=suite, actor=None)
    draft = make_agent(status="draft", name="Draft agent")
    empty = services.suite_create(organization=draft.organization, actor=None, agent=draft, name="S")
    add_case(empty, "One", "Hello?")
    with pytest.raises(ConflictError, match="has no release yet"):
        services.run_create(suite=empty, actor=None)
    assert not EvalRun.objects.exists()


def test_comparing_two_runs_shows_what_improved_and_regressed(suite, vat_agent):
    """Release 1 against release 2, whose new guardrail blocks one question: that case regresses, a
    case expecting the block improves, the rest are unchanged."""
    from tests.agents.runtime.conftest import guardrail

    add_case(suite, "Reverse charge", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}])
    add_case(suite, "Invoices", "What must every invoice show?", [{"kind": "not_blocked"}])
    add_case(suite, "Crypto refused", "Can we take bitcoin as payment?", [{"kind": "blocked"}])
    first = services.run_create(suite=suite, actor=None, release=vat_agent.active_release)
    guardrail(
        vat_agent,
        5,
        name="No invoices",
        kind="keywords",
        action="block",
        config={"keywords": ["invoice", "bitcoin"]},
    )
    second = services.run_create(suite=suite, actor=None, release=release_now(vat_agent))
    comparison = run_comparison(run=second, against=first)
    changes = {row["name"]: row["change"] for row in comparison["cases"]}
    assert changes == {"Reverse charge": "unchanged", "Invoices": "regressed", "Crypto refused": "improved"}
    assert comparison["summary"] == {"improved": 1, "regressed": 1, "unchanged": 1, "added": 0, "removed": 0}
    regressed = next(row for row in comparison["cases"] if row["change"] == "regressed")
    assert regressed["before"]["passed"] and not regressed["after"]["passed"]
    assert regressed["after"]["reason"].startswith("The run was blocked")


def test_a_resumed_run_skips_the_cases_it_recorded(suite, cases, vat_agent, settings):
    """A run taken over after its worker died goes on where it stopped: no case runs twice."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    run = services.run_create(suite=suite, actor=None)
    first = cases[0]
    result = services._run_case(run, first, vat_agent)
    result.save()
    EvalRun.objects.filter(pk=run.pk).update(status="running", done=1)
    before = Execution.objects.count()
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert Execution.objects.count() == before + 3
    assert run.results.filter(case=first).count() == 1 and run.done == 4


@pytest.mark.django_db(transaction=True)
def test_the_background_worker_runs_a_queued_run_and_the_api_shows_progress(
    suite, cases, vat_agent, editor, settings
):
    """Through the real queue: the API answers 202 with a queued run at 0 of 4; the leased worker
    (``db_worker --batch``) runs it; the run is then finished with 4 of 4."""
    from tests.conftest import client_for

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    client = client_for(editor)
    response = client.post("/api/v1/evaluation-runs/", {"suite": suite.pk}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["progress"] == {"done": 0, "total": 4}
    assert body["release"] == vat_agent.active_release.number
    LeasedWorker(
        queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
        max_tasks=None, worker_id="eval-worker", excluded_queue_names=[],
    ).run()  # fmt: skip
    detail = client.get(f"/api/v1/evaluation-runs/{body['id']}/").json()
    assert detail["status"] == "failed" and detail["progress"] == {"done": 4, "total": 4}
    assert [r["passed"] for r in detail["results"]] == [True, True, True, False]
    assert DBTaskResult.objects.get().status == TaskResultStatus.SUCCESSFUL


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_task_fails_in_the_worker_ends_in_error(suite, cases, vat_agent, settings, monkeypatch):
    """When the task itself fails (here its totals cannot be written), ``task_finished`` ends the run
    ``error`` with the reason: it never stays running."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    run = services.run_create(suite=suite, actor=None)

    original = services.run_finish

    def broken(*, run, error=""):
        if not error:  # the task's own call fails; the receiver's (with the reason) goes through
            raise RuntimeError("totals could not be written")
        return original(run=run, error=error)

    monkeypatch.setattr(services, "run_finish", broken)
    LeasedWorker(
        queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
        max_tasks=None, worker_id="eval-worker", excluded_queue_names=[],
    ).run()  # fmt: skip
    monkeypatch.undo()
    run.refresh_from_db()
    assert run.status == "error" and "RuntimeError: totals could not be written" in run.error
    assert run.done == 4  # the cases it recorded stay
