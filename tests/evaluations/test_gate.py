"""The activation gate: a release may go live only if the required suite's latest run on exactly that
release passed every must-pass case and at least the requirement's threshold."""

from __future__ import annotations

from decimal import Decimal

from agents.activation import GateResult, run_gates
from evaluations import services
from evaluations.gate import evaluation_gate
from evaluations.models import EvalRun, Requirement
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case
from tests.factories import release_now


def require(suite, threshold="0.90"):
    return Requirement.objects.create(
        organization=suite.organization, agent=suite.agent, suite=suite, threshold=Decimal(threshold)
    )


def test_an_agent_without_a_requirement_passes(vat_agent):
    """No requirement: the gate has nothing to say (None), so the activation checks let it through."""
    assert evaluation_gate(vat_agent, vat_agent.active_release) is None
    verdict = run_gates(agent=vat_agent, release=vat_agent.active_release)
    assert verdict.passed and verdict.failures == [] and "evaluations" not in verdict.evidence


def test_a_release_never_run_is_refused(suite, cases, vat_agent):
    require(suite)
    result = evaluation_gate(vat_agent, vat_agent.active_release)
    assert isinstance(result, GateResult) and not result.passed
    assert result.message.startswith("Release 1 has not been evaluated with the suite 'VAT regression'")
    assert result.failures == []
    assert result.evidence["release_hash"] == vat_agent.active_release.content_hash


def test_a_run_below_the_threshold_is_refused_with_the_failing_cases(suite, cases, vat_agent):
    require(suite)
    run = services.run_create(suite=suite, actor=None)
    result = evaluation_gate(vat_agent, vat_agent.active_release)
    assert not result.passed
    assert result.message == (
        "Release 1 did not pass the suite 'VAT regression': it passed 75.0 % of the cases, below the "
        "required 90.0 %."
    )
    failing = [
        {"case": run.results.get(case_name="Impossible").case_id, "name": "Impossible", "must_pass": False,
         "reason": "The answer does not contain “canteen”."},
    ]  # fmt: skip
    assert result.failures == ["Impossible: The answer does not contain “canteen”."]
    assert result.evidence == {
        "suite": suite.pk,
        "release": 1,
        "release_hash": vat_agent.active_release.content_hash,
        "threshold": "0.900",
        "eval_run": run.pk,
        "pass_rate": "0.750",
        "must_pass_failures": 0,
        "failing_cases": failing,
    }
    # The activation checks report the gate's failure and keep its evidence for the audit event.
    verdict = run_gates(agent=vat_agent, release=vat_agent.active_release)
    assert not verdict.passed and verdict.evidence["evaluations"] == result.evidence
    [failure] = verdict.failures
    assert failure.gate == "evaluations" and failure.message == result.message
    assert failure.details == result.failures


def test_the_threshold_is_the_requirements(suite, cases, vat_agent):
    require(suite, "0.75")
    services.run_create(suite=suite, actor=None)
    result = evaluation_gate(vat_agent, vat_agent.active_release)
    assert result.passed and result.evidence["pass_rate"] == "0.750"
    assert result.message == "Release 1 passed the suite 'VAT regression'."
    assert result.evidence["failing_cases"][0]["name"] == "Impossible"  # passed, but not every case


def test_a_failed_must_pass_case_is_refused_whatever_the_rate(suite, vat_agent):
    require(suite, "0.5")
    add_case(suite, "Fine", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}])
    add_case(suite, "Key", REVERSE_CHARGE_Q, [{"kind": "contains", "text": "absent"}], must_pass=True)
    services.run_create(suite=suite, actor=None)
    result = evaluation_gate(vat_agent, vat_agent.active_release)
    assert not result.passed and "1 must-pass case(s) failed" in result.message
    assert result.failures == ["Key (must pass): The answer does not contain “absent”."]
    case = result.evidence["failing_cases"][0]
    assert case["name"] == "Key" and case["must_pass"]


def test_only_a_run_on_exactly_that_release_counts_and_the_latest_one(suite, cases, vat_agent):
    """A pass on release 1 says nothing of release 2; and a newer failed run on release 1 replaces an
    older passed one."""
    require(suite, "0.75")
    first = vat_agent.active_release
    services.run_create(suite=suite, actor=None, release=first)
    from tests.agents.runtime.conftest import guardrail

    guardrail(
        vat_agent, 5, name="Stricter", kind="keywords", action="block", config={"keywords": ["invoice"]}
    )
    second = release_now(vat_agent, activate=False)
    assert evaluation_gate(vat_agent, first).passed
    assert not evaluation_gate(vat_agent, second).passed
    services.run_create(suite=suite, actor=None, release=second)
    assert not evaluation_gate(vat_agent, second).passed  # 2 of 4 pass: the invoice questions are now blocked
    # The latest run on release 1 fails (a stricter case was added): release 1 no longer passes.
    add_case(suite, "Key", REVERSE_CHARGE_Q, [{"kind": "contains", "text": "absent"}], must_pass=True)
    services.run_create(suite=suite, actor=None, release=first)
    assert not evaluation_gate(vat_agent, first).passed


def test_a_run_still_going_or_stopped_is_refused(suite, cases, vat_agent, settings):
    require(suite)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    run = services.run_create(suite=suite, actor=None)
    result = evaluation_gate(vat_agent, vat_agent.active_release)
    assert not result.passed and "has not finished (0 of 4 cases)" in result.message
    EvalRun.objects.filter(pk=run.pk).update(status="error")
    stopped = evaluation_gate(vat_agent, vat_agent.active_release)
    assert not stopped.passed and "stopped with an error" in stopped.message
