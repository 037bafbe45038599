"""The activation gate: an agent that requires a suite (``Requirement``) may put a release live only
if that suite's latest run on exactly that release passed every must-pass case and at least the
requirement's threshold of all cases.

``evaluation_gate(agent, release)`` returns the activation hook's ``agents.activation.GateResult``:
``passed``; ``message`` (why not, in a sentence a person can act on); ``failures``, one sentence per
failing case; ``evidence`` (``{"suite", "eval_run", "pass_rate", "threshold", "must_pass_failures",
"release", "release_hash", "failing_cases"}``) for the activation's audit event. An agent without a
requirement: None (the gate has nothing to say). ``EvaluationsConfig.ready`` registers it
(``agents.activation.register_gate``).
"""

from __future__ import annotations

from agents.activation import GateResult
from evaluations.models import CaseResult, EvalRun, Requirement, RunStatus
from guardrails.masking import mask_text


def _result(
    passed: bool, message: str, failures: list[dict] = (), evidence: dict | None = None
) -> GateResult:
    """The gate's answer in the activation hook's terms: each failing case as a sentence a person acts
    on, the cases themselves kept in the evidence."""
    evidence = dict(evidence or {})
    if failures:
        evidence["failing_cases"] = list(failures)
    return GateResult(
        passed=passed,
        message=message,
        failures=[
            f"{f['name']}{' (must pass)' if f['must_pass'] else ''}: {f['reason'] or 'failed'}"
            for f in failures
        ],
        evidence=evidence,
    )


def failing_cases(run: EvalRun) -> list[dict]:
    """The cases ``run`` failed, must-pass ones first, each with the first reason it failed."""
    failures = []
    for result in CaseResult.objects.filter(run=run, passed=False).order_by("-must_pass", "id"):
        reason = result.error or next((v["reason"] for v in result.verdicts if not v.get("passed")), "")
        failures.append(
            {
                "case": result.case_id,
                # The gate's failures reach the activation's refusal and audit event: masked.
                "name": mask_text(result.case_name),
                "must_pass": result.must_pass,
                "reason": mask_text(reason),
            }
        )
    return failures


def evaluation_gate(agent, release) -> GateResult | None:
    """Whether ``release`` of ``agent`` has passed the suite the agent requires (see the module)."""
    requirement = Requirement.objects.select_related("suite").filter(agent_id=agent.pk).first()
    if requirement is None:
        return None
    suite = requirement.suite
    run = EvalRun.objects.filter(suite=suite, release=release).order_by("-created_at", "-id").first()
    evidence = {
        "suite": suite.pk,
        "release": release.number,
        "release_hash": release.content_hash,
        "threshold": str(requirement.threshold),
    }
    if run is None:
        return _result(
            False,
            f"Release {release.number} has not been evaluated with the suite '{suite.name}', which this agent "
            "requires: run the suite against it first.",
            evidence=evidence,
        )
    evidence |= {
        "eval_run": run.pk,
        "pass_rate": None if run.pass_rate is None else str(run.pass_rate),
        "must_pass_failures": run.must_pass_failures,
    }
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return _result(
            False,
            f"The run of '{suite.name}' on release {release.number} has not finished ({run.done} of "
            f"{run.total} cases): wait for it.",
            evidence=evidence,
        )
    if run.status == RunStatus.ERROR:
        return _result(
            False,
            f"The latest run of '{suite.name}' on release {release.number} stopped with an error: run it again.",
            failing_cases(run),
            evidence,
        )
    failures = failing_cases(run)
    problems = []
    if run.must_pass_failures:
        problems.append(f"{run.must_pass_failures} must-pass case(s) failed")
    if run.pass_rate is None or run.pass_rate < requirement.threshold:
        rate = "no case" if run.pass_rate is None else f"{run.pass_rate * 100:.1f} %"
        problems.append(
            f"it passed {rate} of the cases, below the required {requirement.threshold * 100:.1f} %"
        )
    if problems:
        return _result(
            False,
            f"Release {release.number} did not pass the suite '{suite.name}': {'; '.join(problems)}.",
            failures,
            evidence,
        )
    return _result(True, f"Release {release.number} passed the suite '{suite.name}'.", failures, evidence)
