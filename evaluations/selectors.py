"""Reads of the evaluations app shared by the API and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from evaluations.models import CaseResult, EvalRun

IMPROVED, REGRESSED, UNCHANGED, ADDED, REMOVED = "improved", "regressed", "unchanged", "added", "removed"


def run_comparison(*, run: EvalRun, against: EvalRun) -> dict:
    """``run`` compared with ``against`` (an earlier run, usually of another release), case by case:
    ``improved`` (failed there, passes here), ``regressed`` (the reverse), ``unchanged``, ``added``
    (a case only this run has) or ``removed`` (only ``against`` has it). Cases are matched by their
    case (by name when it was deleted since). Two queries."""
    mine = list(CaseResult.objects.filter(run=run).order_by("id"))
    theirs = list(CaseResult.objects.filter(run=against).order_by("id"))

    def key(result: CaseResult):
        return ("case", result.case_id) if result.case_id is not None else ("name", result.case_name)

    before = {key(r): r for r in theirs}
    cases = []
    for result in mine:
        old = before.pop(key(result), None)
        if old is None:
            change = ADDED
        elif old.passed == result.passed:
            change = UNCHANGED
        else:
            change = IMPROVED if result.passed else REGRESSED
        cases.append(_row(result, old, change))
    cases.extend(_row(None, old, REMOVED) for old in before.values())
    summary = {name: 0 for name in (IMPROVED, REGRESSED, UNCHANGED, ADDED, REMOVED)}
    for row in cases:
        summary[row["change"]] += 1
    return {"run": run.pk, "against": against.pk, "summary": summary, "cases": cases}


def _side(result: CaseResult | None) -> dict | None:
    if result is None:
        return None
    failed = [v["reason"] for v in result.verdicts if not v.get("passed")]
    return {
        "passed": result.passed,
        "execution": result.execution_id,
        "reason": result.error or (failed[0] if failed else ""),
    }


def _row(result: CaseResult | None, old: CaseResult | None, change: str) -> dict:
    either = result or old
    return {
        "case": either.case_id,
        "name": either.case_name,
        "must_pass": either.must_pass,
        "change": change,
        "before": _side(old),
        "after": _side(result),
    }


def judge_passed(result: CaseResult) -> bool | None:
    """The judge's verdict on a case (its judged rubric checks all passed), None when none was judged."""
    judged = [v for v in result.verdicts or [] if v.get("kind") == "rubric" and v.get("judged")]
    if not judged:
        return None
    return all(v.get("passed") for v in judged)


@dataclass(frozen=True)
class Agreement:
    """How often the judge and people agree on a suite's cases that have both a judge's verdict and a
    person's mark: ``agreed`` of ``compared`` (``rate`` None when nothing can be compared yet)."""

    agreed: int
    compared: int

    @property
    def rate(self) -> Decimal | None:
        if not self.compared:
            return None
        return (Decimal(self.agreed) / self.compared).quantize(Decimal("0.001"))

    def describe(self) -> str:
        if not self.compared:
            return "no case yet (no case has both a judge's verdict and a person's mark)"
        return f"{self.agreed} of {self.compared} marked cases ({self.rate * 100:.0f} %)"


def judge_agreement(*, suite) -> Agreement:
    """``suite``'s judge against people's marks, over every run's marked results. One query."""
    marked = CaseResult.objects.filter(run__suite=suite, human_passed__isnull=False).only(
        "verdicts", "human_passed"
    )
    agreed = compared = 0
    for result in marked.iterator():
        verdict = judge_passed(result)
        if verdict is None:
            continue
        compared += 1
        agreed += verdict == result.human_passed
    return Agreement(agreed, compared)
