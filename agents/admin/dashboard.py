"""The agents' dashboard panel (the admin index): a fixed, small number of aggregate queries whatever
the data size. Registered with the site in ``agents.admin``; rendered by
``admin/agents/dashboard_panel.html``."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db.models import Count, Func, IntegerField, Q, Sum
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from agents.models import (
    Agent,
    AgentStatus,
    AgentType,
    Execution,
    ExecutionStatus,
    ExecutionStep,
    StepKind,
    StepStatus,
)
from guardrails.masking import mask_text

CHART_DAYS = 14
CHART_WIDTH = 560
CHART_HEIGHT = 160
CHART_LABEL_SPACE = 22


#: Runs that did not answer: failed, blocked by a guardrail, or refused by a budget. The chart and the
#: recent failures count them together; the cards count each apart.
UNSUCCESSFUL = [ExecutionStatus.FAILED, ExecutionStatus.BLOCKED, ExecutionStatus.REFUSED]


@dataclass
class Bar:
    day: dt.date
    total: int
    failed: int
    x: float
    width: float
    y: float
    height: float
    failed_y: float
    failed_height: float
    label_x: float
    show_label: bool


def executions_chart(executions, today: dt.date) -> dict:
    """Executions per day over the last ``CHART_DAYS`` days, as SVG bar geometry (no JavaScript)."""
    start = today - dt.timedelta(days=CHART_DAYS - 1)
    tz = timezone.get_current_timezone()
    start_at = dt.datetime.combine(start, dt.time.min, tzinfo=tz)
    rows = (
        executions.filter(created_at__gte=start_at)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(
            total=Count("id"),
            failed=Count("id", filter=Q(status__in=UNSUCCESSFUL)),
        )
    )
    per_day = {row["day"]: row for row in rows}
    peak = max((row["total"] for row in per_day.values()), default=0)
    plot_height = CHART_HEIGHT - CHART_LABEL_SPACE
    slot = CHART_WIDTH / CHART_DAYS
    bars = []
    for index in range(CHART_DAYS):
        day = start + dt.timedelta(days=index)
        row = per_day.get(day, {"total": 0, "failed": 0})
        height = (row["total"] / peak * (plot_height - 4)) if peak else 0
        failed_height = (row["failed"] / peak * (plot_height - 4)) if peak else 0
        bars.append(
            Bar(
                day=day,
                total=row["total"],
                failed=row["failed"],
                x=round(index * slot + slot * 0.15, 1),
                width=round(slot * 0.7, 1),
                y=round(plot_height - height, 1),
                height=round(height, 1),
                failed_y=round(plot_height - failed_height, 1),
                failed_height=round(failed_height, 1),
                label_x=round(index * slot + slot / 2, 1),
                show_label=index % 2 == (CHART_DAYS - 1) % 2,
            )
        )
    return {
        "bars": bars,
        "peak": peak,
        "total": sum(b.total for b in bars),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": plot_height,
        "label_y": CHART_HEIGHT - 6,
    }


def percentile(executions, field: str, fraction: float):
    """The ``fraction`` percentile of ``field`` (nearest rank), in two indexed queries on any database."""
    values = executions.filter(**{f"{field}__isnull": False})
    count = values.count()
    if not count:
        return None
    rank = max(0, min(count - 1, math.ceil(fraction * count) - 1))
    return values.order_by(field).values_list(field, flat=True)[rank]


class JSONArrayLength(Func):
    """The length of a JSON array (NULL when the value is missing): ``json_array_length`` in SQLite,
    ``jsonb_array_length`` in PostgreSQL."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="jsonb_array_length", **extra_context)


def dashboard_context(*, agents, executions, steps=None) -> dict:
    """Everything the dashboard shows, from already-scoped ``agents`` and ``executions`` querysets."""
    now = timezone.localtime()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    counts = {
        (row["status"], row["type"]): row["n"]
        for row in agents.values("status", "type").annotate(n=Count("id"))
    }
    matrix = [
        {
            "type": label,
            "cells": [counts.get((status, value), 0) for status in AgentStatus.values],
            "total": sum(counts.get((status, value), 0) for status in AgentStatus.values),
        }
        for value, label in AgentType.choices
    ]
    status_totals = [
        {"value": status, "label": label, "count": sum(counts.get((status, t), 0) for t in AgentType.values)}
        for status, label in AgentStatus.choices
    ]

    month = executions.filter(created_at__gte=month_start)
    totals = month.aggregate(
        runs=Count("id"),
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
        cost=Sum("cost"),
        blocked=Count("id", filter=Q(status=ExecutionStatus.BLOCKED)),
        failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        refused=Count("id", filter=Q(status=ExecutionStatus.REFUSED)),
    )
    if steps is None:
        steps = ExecutionStep.objects.filter(execution__in=month.values("pk"))
    # Passages withheld from the model inside runs that went on: each knowledge search lists those a
    # retrieval guardrail dropped and those the privacy boundary withheld.
    dropped_passages = steps.filter(
        kind=StepKind.RETRIEVAL, status=StepStatus.DROPPED, execution__created_at__gte=month_start
    ).aggregate(
        n=Sum(
            Coalesce(JSONArrayLength(KeyTransform("dropped", "output")), 0)
            + Coalesce(JSONArrayLength(KeyTransform("withheld", "output")), 0)
        )
    )["n"]
    # The guardrails that ended runs (``blocked`` steps; a dropped passage is not one).
    blocked_by = list(
        steps.filter(
            kind=StepKind.GUARDRAIL, status=StepStatus.BLOCKED, execution__created_at__gte=month_start
        )
        .values("name")
        .annotate(n=Count("id"))
        .order_by("-n", "name")[:5]
    )
    recent_failures = list(
        executions.filter(status__in=UNSUCCESSFUL)
        .select_related("agent")
        .only("id", "status", "error", "created_at", "source", "agent__id", "agent__name")
        .order_by("-created_at", "-id")[:8]
    )
    for failure in recent_failures:
        # A panel is a list: client identifiers masked (docs/security.md), by the detectors alone.
        failure.error = mask_text(failure.error)
    return {
        "agent_matrix": matrix,
        "agent_statuses": status_totals,
        "agent_status_labels": [label for _, label in AgentStatus.choices],
        "agent_total": sum(row["total"] for row in matrix),
        "chart": executions_chart(executions, now.date()),
        "p95_latency_ms": percentile(month, "latency_ms", 0.95),
        "month": month_start,
        "month_runs": totals["runs"],
        "tokens_in": totals["tokens_in"] or 0,
        "tokens_out": totals["tokens_out"] or 0,
        "cost": totals["cost"] or 0,
        "blocked": totals["blocked"],
        "failed": totals["failed"],
        "refused": totals["refused"],
        "dropped_passages": dropped_passages or 0,
        "blocked_by": blocked_by,
        "recent_failures": recent_failures,
    }


def dashboard_panel(request, organization) -> dict:
    """The panel's context for ``organization`` (the site asks only when the user may view it): agents,
    executions per day, latency, tokens and cost, blocked runs and dropped passages, recent failures."""
    return dashboard_context(
        agents=Agent.objects.filter(organization=organization),
        executions=Execution.objects.filter(organization=organization),
        steps=ExecutionStep.objects.filter(execution__organization=organization),
    )
