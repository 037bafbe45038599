"""The dashboard's parts apart from any page: the one money and latency format, the date range, the
server-drawn chart, the percentile the database computes, and the period the site hands to panels."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.template.loader import render_to_string

from agents.models import Execution
from prisma_glow.admin.charts import Series, day_chart, nice_ticks
from prisma_glow.admin.period import parse_period
from prisma_glow.aggregates import Percentile, percentile_cont
from prisma_glow.display import format_duration_ms, format_money
from tests.factories import ExecutionFactory

TODAY = dt.date(2026, 3, 18)


# --- Formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        ("", "—"),
        ("not a number", "—"),
        (0, "0 ms"),
        (0.42, "0.42 ms"),
        (1, "1 ms"),
        (850, "850 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (1000, "1.0 s"),
        (2400, "2.4 s"),
        (30061, "30.1 s"),
        (1_234_567, "1,234.6 s"),
    ],
)
def test_latency_is_milliseconds_under_a_second_then_seconds_with_one_decimal(value, shown):
    assert format_duration_ms(value) == shown


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (None, "EUR", "—"),
        ("", "EUR", "—"),
        ("NaN", "EUR", "—"),
        ("abc", "EUR", "—"),
        (0, "EUR", "EUR 0.0000"),
        (Decimal("0.5"), "EUR", "EUR 0.5000"),
        (Decimal("0.012345"), "GBP", "GBP 0.0123"),
        (Decimal("0.00005"), "EUR", "EUR 0.0001"),
        (Decimal("1204.5"), "USD", "USD 1,204.5000"),
        (0.1, None, "0.1000"),
    ],
)
def test_money_has_four_decimals_and_the_currency_first(value, currency, shown):
    assert format_money(value, currency) == shown


def test_the_template_filters_are_the_same_functions():
    html = render_to_string(
        "agents/console/_step.html",
        {
            "step": {
                "kind": "model_call",
                "kind_label": "Model",
                "duration_ms": 30061,
                "cost": Decimal("0.002"),
                "model": "m",
            },
            "currency": "GBP",
        },
    )
    assert "30.1 s" in html and "GBP 0.0020" in html


# --- Date range -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "start", "end"),
    [
        ({"range": "today"}, TODAY, TODAY),
        ({"range": "7d"}, dt.date(2026, 3, 12), TODAY),
        ({"range": "30d"}, dt.date(2026, 2, 17), TODAY),
        ({"range": "month"}, dt.date(2026, 3, 1), TODAY),
        ({}, dt.date(2026, 3, 1), TODAY),
        (
            {"range": "custom", "from": "2025-12-30", "to": "2026-01-02"},
            dt.date(2025, 12, 30),
            dt.date(2026, 1, 2),
        ),
    ],
)
def test_each_range_covers_its_days(params, start, end):
    period = parse_period(params, today=TODAY)
    assert (period.start, period.end, period.error) == (start, end, "")
    assert period.days[0] == start and period.days[-1] == end and len(period.days) == (end - start).days + 1


def test_a_range_is_whole_local_days_and_can_be_asked_for_again(settings):
    period = parse_period({"range": "custom", "from": "2026-01-01", "to": "2026-01-31"}, today=TODAY)
    assert period.start_at.hour == 0 and period.end_before.date() == dt.date(2026, 2, 1)
    assert period.query == "range=custom&from=2026-01-01&to=2026-01-31"
    assert period.label == "1 Jan 2026 – 31 Jan 2026"
    assert parse_period({"range": "7d"}, today=TODAY).query == "range=7d"


def test_the_longest_custom_range_is_a_year_and_a_day():
    assert not parse_period({"range": "custom", "from": "2024-01-01", "to": "2025-01-01"}, today=TODAY).error
    too_long = parse_period({"range": "custom", "from": "2024-01-01", "to": "2025-01-02"}, today=TODAY)
    assert "at most 367 days" in too_long.error and too_long.key == "month"


# --- Chart ----------------------------------------------------------------------------------------


def test_ticks_are_round_numbers_up_to_the_peak():
    assert nice_ticks(0, integer=True) == [0, 1]
    assert nice_ticks(7, integer=True) == [0, 2, 4, 6, 8]
    assert nice_ticks(3, integer=True) == [0, 1, 2, 3]
    assert nice_ticks(0.013, integer=False) == [0, 0.005, 0.01, 0.015]
    assert nice_ticks(2900, integer=True) == [0, 1000, 2000, 3000]


def _render(chart) -> str:
    return render_to_string("admin/pg_chart.html", {"chart": chart, "chart_id": "chart-test"})


def test_the_chart_has_axes_ticks_a_legend_and_escapes_names():
    days = [TODAY - dt.timedelta(days=i) for i in range(13, -1, -1)]
    name = '<script>alert("x")</script> & Co'
    chart = day_chart(
        key="runs",
        title="Runs per day, by agent",
        days=days,
        series=[Series(name, [i % 3 for i in range(14)]), Series("VAT adviser", [1] * 14)],
    )
    html = _render(chart)
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert html.count('class="pg-chart-axis') == 2  # the y and the x axis
    y_labels = re.findall(r'text-anchor="end" dominant-baseline="middle">([^<]+)<', html)
    assert y_labels == ["0", "1", "2", "3"]  # stacked peak 3
    x_labels = re.findall(r'text-anchor="middle">([^<]+)<', html)
    assert x_labels[-1] == "18 Mar" and 2 <= len(x_labels) <= 8
    legend = re.findall(r'class="pg-chart-legend-label"[^>]*>([^<]+)<', html)
    assert legend == ["&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co", "VAT adviser"]
    assert html.count('<rect class="pg-chart-bar') == sum(1 for i in range(14) if i % 3) + 14
    assert "style=" not in html  # the CSP allows no inline style


def test_a_line_chart_leaves_a_gap_where_a_day_has_no_value():
    days = [TODAY - dt.timedelta(days=i) for i in range(4, -1, -1)]
    chart = day_chart(
        key="latency",
        title="p95 latency per day",
        days=days,
        series=[Series("p95 latency", [100.0, 250.0, None, 1800.0, 2000.0])],
        kind="line",
        tick_format=format_duration_ms,
    )
    assert len(chart.lines) == 2 and len(chart.points) == 4
    assert [t["label"] for t in chart.y_ticks] == ["0 ms", "500 ms", "1.0 s", "1.5 s", "2.0 s"]
    html = _render(chart)
    assert html.count("<polyline") == 2 and "p95 latency" in html


def test_a_long_legend_wraps_and_shortens_names():
    days = [TODAY]
    series = [Series("An agent with a very long name indeed, longer than forty letters", [1])] + [
        Series(f"Agent {i}", [1]) for i in range(8)
    ]
    chart = day_chart(key="runs", title="Runs", days=days, series=series)
    assert chart.legend[0]["label"].endswith("…") and len(chart.legend[0]["label"]) == 40
    assert len({item["y"] for item in chart.legend}) >= 2 and chart.height > chart.legend[-1]["y"]
    assert all(item["x"] < 640 for item in chart.legend)


# --- Percentile in the database -----------------------------------------------------------------------


def test_percentile_cont_interpolates_like_postgresql():
    assert percentile_cont([], 0.95) is None
    assert percentile_cont([5], 0.95) == 5
    assert percentile_cont([100, 200, 300], 0.95) == pytest.approx(290)
    assert percentile_cont([10 * i for i in range(1, 21)], 0.95) == pytest.approx(190.5)
    assert percentile_cont([3, 1, 2], 0.5) == 2
    with pytest.raises(ValueError):
        Percentile("latency_ms", 1.5)


@pytest.mark.django_db
def test_the_database_computes_the_percentile_per_group(org):
    for latency in (100, 200, 300):
        ExecutionFactory(agent__organization=org, source="api", latency_ms=latency)
    for latency in (10, 1000):
        ExecutionFactory(agent__organization=org, source="console", latency_ms=latency)
    ExecutionFactory(agent__organization=org, source="console", latency_ms=None)
    rows = {
        row["source"]: row["p95"]
        for row in Execution.objects.filter(organization=org)
        .values("source")
        .annotate(p95=Percentile("latency_ms", 0.95))
    }
    assert rows["api"] == pytest.approx(290) and rows["console"] == pytest.approx(950.5)
    assert Execution.objects.none().aggregate(p=Percentile("latency_ms", 0.95))["p"] is None
    assert Execution.objects.filter(organization=org).aggregate(p=Percentile("latency_ms", 0.5))[
        "p"
    ] == pytest.approx(200)


# --- The period reaches the panels that ask for it ---------------------------------------------------


@pytest.mark.django_db
def test_a_panel_registered_with_uses_period_gets_the_chosen_range(owner_client, org, settings, tmp_path):
    templates = [dict(engine) for engine in settings.TEMPLATES]
    templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
    settings.TEMPLATES = templates
    (tmp_path / "period_panel.html").write_text('<p id="period-panel">{{ period_panel_days }}</p>')
    asked = []

    def context(request, organization, *, period):
        asked.append(period)
        return {"period_panel_days": len(period.days)}

    admin.site.register_dashboard_panel(
        "period-probe", template="period_panel.html", context=context, uses_period=True
    )
    try:
        html = owner_client.get("/admin/?range=7d").content.decode()
        assert '<p id="period-panel">7</p>' in html and asked[0].key == "7d"
        html = owner_client.get("/admin/?range=custom&from=2026-01-01&to=2026-01-10").content.decode()
        assert '<p id="period-panel">10</p>' in html
    finally:
        admin.site.unregister_dashboard_panel("period-probe")
