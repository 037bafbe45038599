"""Writes of the evaluations app: suites, cases (by hand, imported, or saved from an execution), runs
and the activation requirement. Keyword-only, atomic, organisation locked first, audited.

A run is created ``queued`` and its work enqueued (``tasks.run_suite``) in the same transaction;
``run_execute`` is that work: each case through ``agents.runtime.execute`` (source ``eval``, the run's
release pinned, the case's as-of date), its checks applied (``checks``), progress saved case by case.
A case whose run fails or is refused is a failed case with the reason, never a crashed run; a run
resumed after its worker died skips the cases it has already recorded.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from agents.exceptions import AgentNotRunnable
from agents.models import Agent, Execution, ExecutionStatus, Release
from agents.privacy import shown_text
from evaluations import checks as checks_engine
from evaluations.models import (
    DEFAULT_THRESHOLD,
    FINISHED,
    Case,
    CaseResult,
    EvalRun,
    Requirement,
    RunStatus,
    Suite,
)
from guardrails.masking import mask_data, mask_text
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import BudgetExceeded, ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict

logger = logging.getLogger(__name__)

SUITE_FIELDS = ("name", "description", "judge_provider", "judge_model")
CASE_FIELDS = ("name", "input", "as_of", "must_pass", "expected_output", "checks")


def _full_clean(instance) -> None:
    """Field errors first (400), then a duplicate name (409 ``ConflictError`` keyed by the field, as
    every resource's: ``prisma_glow.models.DomainModel.full_clean``)."""
    instance.full_clean()


def _suite_clean(suite: Suite) -> None:
    """A suite's judge provider is one of its organisation's."""
    provider = suite.judge_provider
    if provider is not None and provider.organization_id != suite.organization_id:
        raise ValidationError({"judge_provider": ["This provider is not in your organisation."]})
    _full_clean(suite)


def _check_fields(fields: dict, allowed, what: str) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise TypeError(f"Unknown {what} field(s): {', '.join(unknown)}")


# --- Suites ------------------------------------------------------------------------------------------
@retry_on_conflict
@transaction.atomic
def suite_create(
    *,
    organization,
    actor,
    agent: Agent,
    name: str,
    description: str = "",
    judge_provider=None,
    judge_model: str = "",
) -> Suite:
    """A new, empty suite for ``agent`` (of ``organization``); ``judge_provider`` / ``judge_model``
    grade its rubric checks (``evaluations.judge``; None: the organisation's default provider)."""
    if agent.organization_id != organization.pk:
        raise ValidationError({"agent": ["This agent is not in your organisation."]})
    lock_for_write(organization=organization)
    suite = Suite(
        organization=organization,
        agent=agent,
        name=name,
        description=description,
        judge_provider=judge_provider,
        judge_model=judge_model,
    )
    _suite_clean(suite)
    suite.save()
    audit_record(
        organization=organization,
        action="evaluation_suite.create",
        actor=actor,
        obj=suite,
        after=snapshot(suite),
    )
    return suite


@retry_on_conflict
@transaction.atomic
def suite_update(*, suite: Suite, actor, **fields: Any) -> Suite:
    """Rename or describe a suite, or choose its judge; its agent is fixed (its runs are of that
    agent's releases)."""
    _check_fields(fields, SUITE_FIELDS, "suite")
    lock_for_write(organization=suite.organization_id)
    suite = Suite.objects.select_for_update(of=("self",)).select_related("organization").get(pk=suite.pk)
    return audited_update(
        suite,
        organization=suite.organization,
        actor=actor,
        action="evaluation_suite.update",
        fields=fields,
        validate=_suite_clean,
    )


@retry_on_conflict
@transaction.atomic
def suite_delete(*, suite: Suite, actor) -> None:
    """Delete a suite and its cases. Refused (409) once it has runs (they are the record of what was
    tested, and may have let a release go live) or while an agent requires it."""
    lock_for_write(organization=suite.organization_id)
    if Requirement.objects.filter(suite=suite).exists():
        raise ConflictError(
            f"The suite '{suite.name}' is required before its agent's releases go live: remove the "
            "requirement first."
        )
    if EvalRun.objects.filter(suite=suite).exists():
        raise ConflictError(
            f"The suite '{suite.name}' has runs, the record of what was tested: it cannot be deleted. "
            "Rename it or delete its cases instead."
        )
    audit_record(
        organization=suite.organization,
        action="evaluation_suite.delete",
        actor=actor,
        obj=suite,
        before=snapshot(suite),
    )
    suite.delete()


# --- Cases -------------------------------------------------------------------------------------------
def _validated_checks(raw) -> list[dict]:
    try:
        return checks_engine.validate_checks(raw)
    except ValidationError as exc:
        raise ValidationError({"checks": exc.messages}) from exc


def _new_case(suite: Suite, fields: dict) -> Case:
    _check_fields(fields, CASE_FIELDS, "case")
    fields = dict(fields)
    fields["checks"] = _validated_checks(fields.get("checks", []))
    case = Case(suite=suite, **fields)
    _full_clean(case)
    return case


#: A case's texts that may hold client identifiers (typed by a person, or saved from a run).
CASE_TEXTS = ("name", "input", "expected_output")


def case_snapshot(case: Case) -> dict:
    """A case as the audit log keeps it: its texts with client identifiers masked (the log is read in
    lists: ``agents.privacy``)."""
    data = snapshot(case)
    for name in CASE_TEXTS:
        if isinstance(data.get(name), str):
            data[name] = mask_text(data[name])
    data["checks"] = mask_data(data.get("checks"))
    return data


@retry_on_conflict
@transaction.atomic
def case_create(*, suite: Suite, actor, **fields: Any) -> Case:
    """A new case of ``suite``: ``name``, ``input``, and optionally ``as_of``, ``must_pass``,
    ``expected_output`` and ``checks`` (validated by ``checks.validate_checks``: 400 listing each bad
    check)."""
    lock_for_write(organization=suite.organization_id)
    case = _new_case(suite, fields)
    case.save()
    audit_record(
        organization=suite.organization,
        action="evaluation_case.create",
        actor=actor,
        obj=case,
        after=case_snapshot(case),
    )
    return case


@retry_on_conflict
@transaction.atomic
def case_update(*, case: Case, actor, **fields: Any) -> Case:
    """Change a case; its checks are validated again."""
    _check_fields(fields, CASE_FIELDS, "case")
    if "checks" in fields:
        fields["checks"] = _validated_checks(fields["checks"])
    lock_for_write(organization=case.suite.organization_id)
    case = Case.objects.select_for_update(of=("self",)).select_related("suite__organization").get(pk=case.pk)
    return audited_update(
        case,
        organization=case.suite.organization,
        actor=actor,
        action="evaluation_case.update",
        fields=fields,
        validate=_full_clean,
        snapshot_of=case_snapshot,
    )


@retry_on_conflict
@transaction.atomic
def case_delete(*, case: Case, actor) -> None:
    """Delete a case; the results of past runs keep its name and verdicts."""
    lock_for_write(organization=case.suite.organization_id)
    audit_record(
        organization=case.suite.organization,
        action="evaluation_case.delete",
        actor=actor,
        obj=case,
        before=case_snapshot(case),
    )
    case.delete()


@retry_on_conflict
@transaction.atomic
def cases_import(*, suite: Suite, actor, rows: list[tuple[int, dict]]) -> list[Case]:
    """Create every case of an imported file (``evaluations.imports``: ``(line, fields)`` pairs), or
    none: ``ValidationError`` on ``file`` listing each bad line (``Line 3: …``), a duplicate name (in
    the file or the suite) included. One audit event names the cases created."""
    lock_for_write(organization=suite.organization_id)
    existing = set(Case.objects.filter(suite=suite).values_list("name", flat=True))
    problems: list[str] = []
    cases: list[Case] = []
    for line, fields in rows:
        try:
            case = _new_case(suite, fields)
        except (ValidationError, ConflictError) as exc:
            messages = (
                [f"{k}: {m}" if k != "__all__" else m for k, ms in exc.message_dict.items() for m in ms]
                if hasattr(exc, "error_dict") and not isinstance(exc, ConflictError)
                else exc.messages
            )
            problems.extend(f"Line {line}: {m}" for m in messages)
            continue
        if case.name in existing:
            problems.append(f"Line {line}: the suite already has a case named '{case.name[:80]}'.")
            continue
        existing.add(case.name)
        cases.append(case)
    if problems:
        raise ValidationError({"file": problems})
    if not cases:
        raise ValidationError({"file": ["The file holds no case."]})
    Case.objects.bulk_create(cases)
    audit_record(
        organization=suite.organization,
        action="evaluation_case.import",
        actor=actor,
        obj=suite,
        after={"cases": [mask_text(c.name) for c in cases], "count": len(cases)},
    )
    return cases


def default_checks(execution: Execution) -> list[dict]:
    """What a case saved from ``execution`` checks by default: that it is blocked again when it was,
    else that it is not blocked and cites at least as many passages as it did."""
    if execution.status == ExecutionStatus.BLOCKED:
        return [{"kind": "blocked"}]
    checks: list[dict] = [{"kind": "not_blocked"}]
    if execution.citations:
        checks.append({"kind": "cites_at_least", "count": len(execution.citations)})
    return checks


@retry_on_conflict
@transaction.atomic
def case_from_execution(
    *, execution: Execution, suite: Suite, actor, visible: bool, name: str = "", must_pass: bool = False
) -> Case:
    """ "Save as test case": a case of ``suite`` (of the execution's agent) with the execution's input,
    as-of date and answer (as expected output), and ``default_checks``. ``visible``: whether the
    requester may see the execution's client identifiers (``agents.privacy.may_see_identifiers``);
    when not, the input and answer are saved as they are shown to them, masked."""
    if suite.agent_id != execution.agent_id:
        raise ValidationError({"suite": ["This suite is for another agent than the execution's."]})
    if execution.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.BLOCKED):
        raise ValidationError(
            {
                "execution": [
                    f"Only a completed or blocked run can become a case; this one is {execution.status}."
                ]
            }
        )
    text = shown_text(execution, execution.input, visible=visible)
    answer = shown_text(execution, execution.output, visible=visible)
    # A case's name is shown in lists, run results, the gate's failures and the audit log: never a
    # client identifier in it, whoever saves the case.
    first_line = " ".join(shown_text(execution, execution.input, visible=False).split())[:80]
    return case_create(
        suite=suite,
        actor=actor,
        name=name or f"From execution {execution.pk}: {first_line}"[:200],
        input=text,
        as_of=execution.as_of,
        must_pass=must_pass,
        expected_output=answer,
        checks=default_checks(execution),
    )


# --- Requirements ------------------------------------------------------------------------------------
def _requirement_clean(requirement: Requirement) -> None:
    if requirement.suite.agent_id != requirement.agent_id:
        raise ValidationError({"suite": ["The required suite must be one of this agent's suites."]})
    _full_clean(requirement)


@retry_on_conflict
@transaction.atomic
def requirement_create(
    *, organization, actor, agent: Agent, suite: Suite, threshold=DEFAULT_THRESHOLD
) -> Requirement:
    """Require ``suite`` before a release of ``agent`` goes live (``gate``); one requirement per agent
    (409 when it has one: change it instead)."""
    if agent.organization_id != organization.pk or suite.organization_id != organization.pk:
        raise ValidationError({"agent": ["This agent is not in your organisation."]})
    lock_for_write(organization=organization)
    if Requirement.objects.filter(agent=agent).exists():
        raise ConflictError(
            f"The agent '{agent.name}' already requires a suite: change that requirement instead."
        )
    requirement = Requirement(organization=organization, agent=agent, suite=suite, threshold=threshold)
    _requirement_clean(requirement)
    requirement.save()
    audit_record(
        organization=organization,
        action="evaluation_requirement.create",
        actor=actor,
        obj=requirement,
        after=snapshot(requirement),
    )
    return requirement


@retry_on_conflict
@transaction.atomic
def requirement_update(*, requirement: Requirement, actor, **fields: Any) -> Requirement:
    """Change the required suite or the threshold (the agent is fixed)."""
    _check_fields(fields, ("suite", "threshold"), "requirement")
    lock_for_write(organization=requirement.organization_id)
    requirement = (
        Requirement.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=requirement.pk)
    )
    return audited_update(
        requirement,
        organization=requirement.organization,
        actor=actor,
        action="evaluation_requirement.update",
        fields=fields,
        validate=_requirement_clean,
    )


@retry_on_conflict
@transaction.atomic
def requirement_delete(*, requirement: Requirement, actor) -> None:
    """The agent's releases no longer need a passed run to go live."""
    lock_for_write(organization=requirement.organization_id)
    audit_record(
        organization=requirement.organization,
        action="evaluation_requirement.delete",
        actor=actor,
        obj=requirement,
        before=snapshot(requirement),
    )
    requirement.delete()


# --- Runs --------------------------------------------------------------------------------------------
def _threshold_for(suite: Suite) -> Decimal:
    requirement = Requirement.objects.filter(agent_id=suite.agent_id, suite=suite).first()
    return requirement.threshold if requirement else DEFAULT_THRESHOLD


@retry_on_conflict
@transaction.atomic
def run_create(*, suite: Suite, actor, release: Release | None = None) -> EvalRun:
    """Queue a run of ``suite`` against ``release`` of its agent (default: the agent's newest
    release); the work is enqueued in the same transaction (``tasks.run_suite``). 409 when the agent
    has no release or the suite no case; 400 when ``release`` is another agent's."""
    agent = suite.agent
    if release is None:
        release = Release.objects.filter(agent=agent).order_by("-number").first()
        if release is None:
            raise ConflictError(
                f"The agent '{agent.name}' has no release yet: create a release of its configuration, then run "
                "the suite against it."
            )
    elif release.agent_id != agent.pk:
        raise ValidationError({"release": ["This release is another agent's."]})
    lock_for_write(organization=suite.organization_id)
    total = Case.objects.filter(suite=suite).count()
    if total == 0:
        raise ConflictError(f"The suite '{suite.name}' has no case yet: add cases, then run it.")
    run = EvalRun.objects.create(
        organization_id=suite.organization_id,
        suite=suite,
        release=release,
        total=total,
        threshold=_threshold_for(suite),
        requested_by=actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None,
    )
    audit_record(
        organization=suite.organization,
        action="evaluation_run.create",
        actor=actor,
        obj=run,
        after={
            "suite": suite.pk,
            "release": release.number,
            "release_hash": release.content_hash,
            "cases": total,
        },
    )
    from evaluations.tasks import run_suite  # the task calls run_execute: the one lazy side

    run_suite.enqueue(run_id=run.pk)
    return run


#: Errors that mean the database went away: the task is retried (prisma_glow.worker), not the case failed.
_CONNECTION_ERRORS = (OperationalError, InterfaceError)


class _Grading:
    """What a run's rubric checks need, looked up once and only when a case has one: the suite's
    judge and the judge's agreement with people so far (``selectors.judge_agreement``)."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self._judge = None
        self._agreement = None

    @property
    def judge(self):
        if self._judge is None:
            from evaluations.judge import Judge

            self._judge = Judge(self.suite)
        return self._judge

    @property
    def agreement(self):
        if self._agreement is None:
            from evaluations.selectors import judge_agreement

            self._agreement = judge_agreement(suite=self.suite)
        return self._agreement


def _rubric_verdict(check: dict, execution: Execution, grading: _Grading) -> dict:
    """A rubric check's verdict: ``judged`` and ``counts`` say whether it has a verdict and whether it
    decides the case (a ``min_agreement`` the judge has not reached yet: recorded, not counted)."""
    judgement = grading.judge.grade(
        rubric=check["rubric"],
        question=shown_text(execution, execution.input, visible=False),
        answer=shown_text(execution, execution.output, visible=False),
    )
    verdict = {
        "kind": "rubric",
        "passed": judgement.passed,
        "reason": judgement.reason,
        "judged": judgement.judged,
        "reasoning": judgement.reasoning,
        "counts": judgement.judged,
    }
    wanted = check.get("min_agreement")
    if judgement.judged and wanted is not None:
        agreement = grading.agreement
        if agreement.rate is None or agreement.rate < Decimal(str(wanted)):
            verdict["counts"] = False
            verdict["reason"] += (
                f" Recorded, not counted: the judge agrees with people on {agreement.describe()}, below "
                f"the {Decimal(str(wanted)) * 100:.0f} % this check requires."
            )
    return verdict


def _run_case(run: EvalRun, case: Case, agent: Agent, grading: _Grading | None = None) -> CaseResult:
    """Run one case and apply its checks; every failure is the case's, with its reason."""
    from agents.runtime import execute  # the runtime loads providers: imported where it runs

    result = CaseResult(run=run, case=case, case_name=case.name, must_pass=case.must_pass)
    execution = None
    try:
        execution = execute(
            agent,
            case.input,
            actor=run.requested_by,
            source="eval",
            is_test=True,
            release=run.release,
            as_of=case.as_of,
        )
    except BudgetExceeded as exc:
        execution = getattr(exc, "execution", None)
        result.error = f"A budget refused the run: {exc.messages[0]}"
    except _CONNECTION_ERRORS:
        raise
    except AgentNotRunnable as exc:
        result.error = f"The agent may not run: {exc}"
    except ValidationError as exc:
        result.error = f"The run was refused: {' '.join(exc.messages)}"
    except Exception as exc:  # a case never crashes the run: its failure is the result
        logger.exception("Evaluation run %s: case %s failed to run", run.pk, case.pk)
        result.error = f"The run failed: {exc}"[:2000] or "The run failed."
    result.execution = execution
    if execution is None:
        return result
    if execution.status in (ExecutionStatus.FAILED, ExecutionStatus.REFUSED):
        result.error = result.error or f"The run ended {execution.status}: {execution.error}"[:2000]
        return result
    outcome = checks_engine.Outcome.of(execution)
    verdicts = []
    for check in case.checks:
        if check.get("kind") == "rubric":
            verdicts.append(_rubric_verdict(check, execution, grading or _Grading(run.suite)))
            continue
        passed, reason = checks_engine.evaluate(check, outcome)
        verdicts.append({"kind": check.get("kind"), "passed": passed, "reason": reason})
    result.verdicts = verdicts
    counted = [v for v in verdicts if v.get("counts", True)]
    if counted:
        result.passed = all(v["passed"] for v in counted)
    else:
        result.passed = execution.status == ExecutionStatus.COMPLETED
        if not result.passed:
            result.error = (
                f"The case has no check that counts and the run ended {execution.status}."
                if verdicts
                else f"The case has no check and the run ended {execution.status}."
            )
    return result


def _percentile(values: list[int], share: float) -> int | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def run_execute(*, run_id: int) -> EvalRun | None:
    """The work of a run (the ``run_suite`` task): each case not yet recorded, then the totals.

    Idempotent: a finished run is left as it is, and a run taken over after its worker died goes on
    from the cases it has not recorded. Not atomic as a whole: each case's result and the progress
    commit together, so the API shows the progress as it goes."""
    run = EvalRun.objects.select_related("suite__agent", "release", "requested_by").filter(pk=run_id).first()
    if run is None or run.status in FINISHED:
        return run
    if run.status == RunStatus.QUEUED:
        run.started_at = timezone.now()
        run.status = RunStatus.RUNNING
        EvalRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=run.started_at)
    agent = run.suite.agent
    recorded = set(CaseResult.objects.filter(run=run).values_list("case_id", flat=True))
    cases = Case.objects.filter(suite=run.suite, created_at__lte=run.created_at).order_by("id")
    grading = _Grading(run.suite)
    for case in cases.exclude(pk__in=recorded):
        result = _run_case(run, case, agent, grading)
        with transaction.atomic():
            result.save()
            EvalRun.objects.filter(pk=run.pk, done__lt=F("total")).update(done=F("done") + 1)
    return run_finish(run=run)


@retry_on_conflict
@transaction.atomic
def run_finish(*, run: EvalRun, error: str = "") -> EvalRun:
    """Write a run's totals and its outcome (audited ``evaluation_run.finish``): ``passed`` when every
    must-pass case passed and at least its threshold of all cases; ``error`` (with ``error``) when its
    work could not finish."""
    lock_for_write(organization=run.organization_id)
    run = EvalRun.objects.select_for_update(of=("self",)).select_related("release", "suite").get(pk=run.pk)
    if run.status in FINISHED:
        return run
    results = list(CaseResult.objects.filter(run=run).select_related("execution"))
    executions = [r.execution for r in results if r.execution is not None]
    latencies = [e.latency_ms for e in executions if e.latency_ms is not None]
    costs = [e.cost for e in executions]
    run.done = len(results)
    run.total = max(run.total if error else run.done, run.done)
    run.passed_count = sum(r.passed for r in results)
    run.must_pass_failures = sum(1 for r in results if r.must_pass and not r.passed)
    run.pass_rate = (Decimal(run.passed_count) / run.done).quantize(Decimal("0.001")) if run.done else None
    run.cost = sum(costs, Decimal("0")) if costs and all(c is not None for c in costs) else None
    run.latency_p50_ms = _percentile(latencies, 0.50)
    run.latency_p95_ms = _percentile(latencies, 0.95)
    run.finished_at = timezone.now()
    if error:
        run.status, run.error = RunStatus.ERROR, error[:2000]
    elif run.pass_rate is not None and run.must_pass_failures == 0 and run.pass_rate >= run.threshold:
        run.status = RunStatus.PASSED
    else:
        run.status = RunStatus.FAILED
    run.save()
    audit_record(
        organization=run.organization,
        action="evaluation_run.finish",
        actor=None,
        obj=run,
        after={
            "status": run.status,
            "suite": run.suite_id,
            "release": run.release.number,
            "release_hash": run.release.content_hash,
            "pass_rate": str(run.pass_rate) if run.pass_rate is not None else None,
            "threshold": str(run.threshold),
            "must_pass_failures": run.must_pass_failures,
            "cases": run.done,
            "error": run.error,
        },
    )
    return run


def run_fail_unfinished(*, run_id: int, reason: str) -> EvalRun | None:
    """End a run whose task failed in the worker (``tasks.fail_run_of_failed_task``) as ``error``;
    the cases it recorded stay."""
    run = EvalRun.objects.filter(pk=run_id).first()
    if run is None or run.status in FINISHED:
        return run
    try:
        return run_finish(run=run, error=reason)
    except DatabaseError:
        logger.exception("Could not end evaluation run %s after its task failed", run_id)
        return run


# --- Human marks -------------------------------------------------------------------------------------
@retry_on_conflict
@transaction.atomic
def result_mark(*, result: CaseResult, actor, passed: bool | None) -> CaseResult:
    """A person's mark on one case of a run: ``passed`` True or False (whether the answer is right,
    whatever the checks said), None to withdraw it. Audited ``evaluation_result.mark``; the marks
    against the judge's verdicts are the suite's agreement (``selectors.judge_agreement``)."""
    if passed is not None and not isinstance(passed, bool):
        raise ValidationError({"passed": ["Must be true (pass), false (fail) or null (no mark)."]})
    lock_for_write(organization=result.run.organization_id)
    result = (
        CaseResult.objects.select_for_update(of=("self",))
        .select_related("run__organization")
        .get(pk=result.pk)
    )
    before = {"human_passed": result.human_passed, "marked_by": result.marked_by_id}
    result.human_passed = passed
    person = actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None
    result.marked_by = person if passed is not None else None  # a key's mark: the audit names the key
    result.marked_at = timezone.now() if passed is not None else None
    result.save(update_fields=["human_passed", "marked_by", "marked_at"])
    audit_record(
        organization=result.run.organization,
        action="evaluation_result.mark",
        actor=actor,
        obj=result,
        before=before,
        after={"human_passed": passed, "run": result.run_id, "case": result.case_name},
    )
    return result
