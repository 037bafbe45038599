"""Evaluations: suites of test cases per agent, runs of a suite against a release, and the requirement
that gates an agent's activation on a passed run (``evaluations.gate``).

A case's ``checks`` are validated by ``evaluations.checks``; a run's per-case results keep each check's
verdict and reason beside the execution (source ``eval``) that produced the answer.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from prisma_glow.models import TimeStampedModel

#: The share of cases a run must pass when the agent's requirement names no other (90 %).
DEFAULT_THRESHOLD = Decimal("0.90")


class Suite(TimeStampedModel):
    """A named set of test cases for one agent, run against its releases."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="evaluation_suites"
    )
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="evaluation_suites")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    #: The model that grades ``rubric`` checks (``evaluations.judge``); blank: the organisation's
    #: default provider. The offline engine cannot grade: its rubric checks are "not judged".
    judge_provider = models.ForeignKey(
        "agents.ModelProvider",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The provider whose model grades rubric checks; blank: the organisation's default.",
    )
    judge_model = models.CharField(
        max_length=120, blank=True, help_text="Blank: the judge provider's default model."
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "name"],
                name="evaluation_suite_unique_name_per_agent",
                violation_error_message="This agent already has a suite with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Case(TimeStampedModel):
    """One question put to the agent, with the checks its answer must pass (``evaluations.checks``).

    ``must_pass``: a run that fails this case does not pass the gate, whatever its pass rate.
    ``expected_output``: the answer a person expects (shown beside the actual one; checks decide).
    ``as_of``: the day the knowledge is searched as of (documents in force that day)."""

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="cases")
    name = models.CharField(max_length=200)
    input = models.TextField()
    as_of = models.DateField(null=True, blank=True)
    must_pass = models.BooleanField(default=False)
    expected_output = models.TextField(blank=True)
    checks = models.JSONField(default=list, blank=True)

    organization_path = "suite__organization"

    class Meta:
        ordering = ["suite", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["suite", "name"],
                name="evaluation_case_unique_name_per_suite",
                violation_error_message="This suite already has a case with this name.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    #: The run itself could not finish (its task failed in the worker); its cases so far are kept.
    ERROR = "error", "Error"


FINISHED = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR)


class EvalRun(models.Model):
    """One run of a suite against one release of its agent, done in the background (``tasks``).

    ``total`` is the number of cases when the run was created, ``done`` how many have a result.
    ``threshold``: the pass rate the run needed (the agent's requirement for this suite, else 90 %),
    fixed when it was created. It ``passed`` when every must-pass case passed and at least that share of
    all cases. Totals (pass rate, must-pass failures, cost, latency percentiles) are written at the end."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="evaluation_runs"
    )
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="runs")
    release = models.ForeignKey("agents.Release", on_delete=models.PROTECT, related_name="evaluation_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    threshold = models.DecimalField(max_digits=4, decimal_places=3, default=DEFAULT_THRESHOLD)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    passed_count = models.PositiveIntegerField(default=0)
    pass_rate = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    must_pass_failures = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    latency_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_p95_ms = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    organization_path = "organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="evaluation_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total")), name="evaluation_run_done_le_total"
            ),
            models.CheckConstraint(
                condition=Q(threshold__gte=0, threshold__lte=1), name="evaluation_run_threshold_share"
            ),
        ]
        indexes = [models.Index(fields=["suite", "release", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.suite} on release {self.release.number} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class CaseResult(models.Model):
    """What one case gave in one run: the execution (source ``eval``; null when the run could not
    even start, e.g. the agent may not run), whether it passed, and each check's verdict
    (``[{"kind", "passed", "reason"}]``). ``case_name`` and ``must_pass`` are kept as they were, so a
    run reads the same after its cases are edited or deleted."""

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="results")
    case_name = models.CharField(max_length=200)
    must_pass = models.BooleanField(default=False)
    execution = models.ForeignKey(
        "agents.Execution", null=True, blank=True, on_delete=models.PROTECT, related_name="evaluation_results"
    )
    passed = models.BooleanField(default=False)
    #: Why the case failed when no check could be applied (the run failed or was refused).
    error = models.TextField(blank=True)
    verdicts = models.JSONField(default=list, blank=True)
    #: A person's mark (``services.result_mark``): whether the answer is right, whatever the checks
    #: said; compared with the judge's verdict for the suite's agreement (``selectors.judge_agreement``).
    human_passed = models.BooleanField(null=True, blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    organization_path = "run__organization"

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "case"],
                condition=Q(case__isnull=False),
                name="evaluation_result_unique_case_per_run",
                violation_error_message="This run already has a result for this case.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_name}: {'passed' if self.passed else 'failed'}"


class Requirement(TimeStampedModel):
    """An agent's activation gate: a release becomes active only if ``suite``'s latest run on exactly
    that release passed every must-pass case and at least ``threshold`` of all cases (``gate``)."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="evaluation_requirements"
    )
    agent = models.OneToOneField(
        "agents.Agent", on_delete=models.CASCADE, related_name="evaluation_requirement"
    )
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="requirements")
    threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=DEFAULT_THRESHOLD,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="The share of cases a run must pass, from 0 to 1 (0.9 = 90 %).",
    )

    organization_path = "organization"

    class Meta:
        ordering = ["agent", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gte=0, threshold__lte=1), name="evaluation_requirement_threshold_share"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} requires {self.suite}"
