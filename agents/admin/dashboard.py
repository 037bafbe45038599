"""The agents' dashboard panel (the admin index) over the dashboard's date range: cards, charts per
day (runs by agent, cost, p95 latency, runs that did not answer) and breakdowns by agent, model,
source and user — a fixed, small number of aggregate queries whatever the data size or the range
(the p95 is the database's: ``prisma_glow.aggregates.Percentile``). Registered with the site in
``agents.admin`` (``uses_period=True``); rendered by ``admin/agents/dashboard_panel.html``."""

from __future__ import annotations

from django.db.models import Case, Count, F, Func, IntegerField, Q, Sum, Value, When
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from agents.models import (
    Agent,
    AgentStatus,
    AgentType,
    Execution,
    ExecutionSource,
    ExecutionStatus,
    ExecutionStep,
    StepKind,
    StepStatus,
)
from guardrails.masking import mask_text
from prisma_glow.admin.charts import Series, day_chart
from prisma_glow.admin.period import Period, parse_period
from prisma_glow.aggregates import Percentile
from prisma_glow.display import DEFAULT_CURRENCY, format_duration_ms, format_money

#: Rows of each breakdown (by agent, model, source, user), the busiest first.
BREAKDOWN_ROWS = 10
#: Agents drawn apart in the runs chart (the busiest of the range); the others are one series.
STACKED_AGENTS = 5
P95 = 0.95


#: Runs that did not answer: failed, blocked by a guardrail, or refused by a budget. The chart and the
#: recent failures count them together; the cards count each apart.
UNSUCCESSFUL = [ExecutionStatus.FAILED, ExecutionStatus.BLOCKED, ExecutionStatus.REFUSED]


class JSONArrayLength(Func):
    """The length of a JSON array (NULL when the value is missing): ``json_array_length`` in SQLite,
    ``jsonb_array_length`` in PostgreSQL."""

    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="jsonb_array_length", **extra_context)


def _figures() -> dict:
    """The aggregates every breakdown row, every day and the range's totals have."""
    return {
        "runs": Count("id"),
        "cost": Sum("cost"),
        "blocked": Count("id", filter=Q(status=ExecutionStatus.BLOCKED)),
        "failed": Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        "refused": Count("id", filter=Q(status=ExecutionStatus.REFUSED)),
        "p95": Percentile("latency_ms", P95),
    }


def _breakdown(runs, *fields: str) -> list[dict]:
    return list(runs.values(*fields).annotate(**_figures()).order_by("-runs", *fields)[:BREAKDOWN_ROWS])


def breakdowns(runs) -> list[dict]:
    """The range's runs by agent, model, source and user (one grouped query each): the
    ``BREAKDOWN_ROWS`` busiest of each, with runs, blocked, failed and refused runs, cost, p95."""
    by_agent = _breakdown(runs, "agent_id", "agent__name")
    for row in by_agent:
        row["label"] = row["agent__name"]
    by_model = _breakdown(runs, "model")
    for row in by_model:
        row["label"] = row["model"] or "No model (offline engine, or stopped before the model)"
    sources = dict(ExecutionSource.choices)
    by_source = _breakdown(runs, "source")
    for row in by_source:
        row["label"] = sources.get(row["source"], row["source"])
    by_user = _breakdown(
        runs, "actor_user_id", "actor_user__username", "actor_api_key_id", "actor_api_key__name"
    )
    for row in by_user:
        if row["actor_user_id"]:
            row["label"] = row["actor_user__username"]
        elif row["actor_api_key_id"]:
            row["label"] = f"API key “{row['actor_api_key__name']}”"
        else:
            row["label"] = "Nobody recorded (a deleted user or key)"
    return [
        {"key": "agent", "title": "By agent", "heading": "Agent", "rows": by_agent},
        {"key": "model", "title": "By model", "heading": "Model", "rows": by_model},
        {"key": "source", "title": "By source", "heading": "Source", "rows": by_source},
        {"key": "user", "title": "By user", "heading": "User or API key", "rows": by_user},
    ]


def day_charts(runs, period: Period, *, top_agents: list[dict], currency: str) -> list:
    """Per day of ``period``: runs (by agent), cost, p95 latency and the runs that did not answer
    (blocked, failed, refused), as server-drawn charts. Two grouped queries whatever the range."""
    tz = timezone.get_current_timezone()
    days = period.days
    per_day = {
        row["day"]: row
        for row in runs.annotate(day=TruncDate("created_at", tzinfo=tz)).values("day").annotate(**_figures())
    }

    def column(name):
        return [(per_day.get(day) or {}).get(name) for day in days]

    # Runs per day and agent, the agents past the busiest ``STACKED_AGENTS`` together (agent 0).
    top = top_agents[:STACKED_AGENTS]
    stacked: dict[tuple, int] = {}
    if top:
        bucket = Case(
            When(agent_id__in=[row["agent_id"] for row in top], then=F("agent_id")),
            default=Value(0),
            output_field=IntegerField(),
        )
        for row in (
            runs.annotate(day=TruncDate("created_at", tzinfo=tz), bucket=bucket)
            .values("day", "bucket")
            .annotate(n=Count("id"))
        ):
            stacked[(row["day"], row["bucket"])] = row["n"]
    run_series = [
        Series(row["agent__name"], [stacked.get((day, row["agent_id"]), 0) for day in days]) for row in top
    ]
    if any(stacked.get((day, 0)) for day in days):
        run_series.append(Series("Other agents", [stacked.get((day, 0), 0) for day in days]))
    if not run_series:
        run_series = [Series("Runs", [0 for _ in days])]

    return [
        day_chart(key="runs", title="Runs per day, by agent", days=days, series=run_series),
        day_chart(
            key="cost",
            title=f"Cost per day ({currency})",
            days=days,
            series=[Series(f"Cost ({currency})", [float(v or 0) for v in column("cost")], "pg-series-0")],
            tick_format=format_money,
            value_format=lambda v: format_money(v, currency),
            integer=False,
        ),
        day_chart(
            key="latency",
            title="p95 latency per day",
            days=days,
            series=[Series("p95 latency", column("p95"), "pg-series-1")],
            kind="line",
            tick_format=format_duration_ms,
        ),
        day_chart(
            key="unanswered",
            title="Runs that did not answer, per day",
            days=days,
            series=[
                Series("Blocked by a guardrail", [v or 0 for v in column("blocked")], "pg-series-error"),
                Series("Failed", [v or 0 for v in column("failed")], "pg-series-warn"),
                Series("Refused by a budget", [v or 0 for v in column("refused")], "pg-series-muted"),
            ],
        ),
    ]


def dashboard_context(
    *, agents, executions, steps=None, period: Period | None = None, currency: str = DEFAULT_CURRENCY
) -> dict:
    """Everything the dashboard shows over ``period`` (this month by default), from already-scoped
    ``agents`` and ``executions`` querysets; a constant number of queries whatever the data."""
    period = period or parse_period({})

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

    runs = period.filter(executions)
    totals = runs.aggregate(tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), **_figures())
    if steps is None:
        steps = ExecutionStep.objects.filter(execution__in=executions.values("pk"))
    steps = period.filter(steps, "execution__created_at")
    # Passages withheld from the model inside runs that went on: each knowledge search lists those a
    # retrieval guardrail dropped and those the privacy boundary withheld.
    dropped_passages = steps.filter(kind=StepKind.RETRIEVAL, status=StepStatus.DROPPED).aggregate(
        n=Sum(
            Coalesce(JSONArrayLength(KeyTransform("dropped", "output")), 0)
            + Coalesce(JSONArrayLength(KeyTransform("withheld", "output")), 0)
        )
    )["n"]
    # The guardrails that ended runs (``blocked`` steps; a dropped passage is not one).
    blocked_by = list(
        steps.filter(kind=StepKind.GUARDRAIL, status=StepStatus.BLOCKED)
        .values("name")
        .annotate(n=Count("id"))
        .order_by("-n", "name")[:5]
    )
    recent_failures = list(
        runs.filter(status__in=UNSUCCESSFUL)
        .select_related("agent")
        .only("id", "status", "error", "created_at", "source", "agent__id", "agent__name")
        .order_by("-created_at", "-id")[:8]
    )
    for failure in recent_failures:
        # A panel is a list: client identifiers masked (docs/security.md), by the detectors alone.
        failure.error = mask_text(failure.error)
    tables = breakdowns(runs)
    return {
        "agent_matrix": matrix,
        "agent_statuses": status_totals,
        "agent_status_labels": [label for _, label in AgentStatus.choices],
        "agent_total": sum(row["total"] for row in matrix),
        "dashboard_charts": day_charts(runs, period, top_agents=tables[0]["rows"], currency=currency),
        "dashboard_breakdowns": tables,
        "runs": totals["runs"],
        "p95_latency_ms": totals["p95"],
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


def dashboard_panel(request, organization, *, period: Period) -> dict:
    """The panel's context for ``organization`` over the dashboard's ``period`` (the site asks only
    when the user may view it): agents, runs, cost and latency per day and by agent, model, source
    and user, blocked runs and dropped passages, recent failures."""
    return dashboard_context(
        agents=Agent.objects.filter(organization=organization),
        executions=Execution.objects.filter(organization=organization),
        steps=ExecutionStep.objects.filter(execution__organization=organization),
        period=period,
        currency=organization.currency,
    )
