"""The dashboard's charts in a real browser (issue 18): the SVG charts are drawn and visible, with their
axes and legends (an agent's name with markup shown as text), the breakdowns and the organisation's
currency are on the page, choosing a range reloads the figures, an unreadable custom range says why —
with no console error and no CSP violation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Execution
from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, ExecutionFactory

pytestmark = pytest.mark.e2e


def _runs(org):
    vat = AgentFactory(organization=org, name="VAT adviser")
    odd = AgentFactory(organization=org, name="<img src=x> Audit")
    tz = timezone.get_current_timezone()
    for days_ago in range(0, 7):
        day = dt.datetime.combine(timezone.localdate() - dt.timedelta(days=days_ago), dt.time(9), tzinfo=tz)
        for i in range(days_ago % 3 + 1):
            execution = ExecutionFactory(
                agent=vat if i % 2 == 0 else odd,
                latency_ms=400 + 300 * days_ago + 50 * i,
                cost=Decimal("0.0125"),
                status="blocked" if (days_ago, i) == (2, 1) else "completed",
                model="gpt-4o",
            )
            Execution.objects.filter(pk=execution.pk).update(created_at=day)


@pytest.fixture
def third_of_march():
    """The runs are made "days ago" and the page, seconds later, reads its ranges from the date: the
    clock starts at noon on 3 March 2027 (requested before the sign-in, so the session is of that
    day), so no day turns in between, and the 7 days reach back across the end of February while
    "This month" holds three days."""
    with time_machine.travel(dt.datetime(2027, 3, 3, 12, 0, tzinfo=dt.UTC), tick=True):
        yield


def test_the_dashboard_draws_its_charts_with_axes_and_legends(
    third_of_march, signed_in_page, live_server, org, watcher
):
    org.currency = "GBP"
    org.save(update_fields=["currency"])
    _runs(org)
    page = signed_in_page
    page.goto(live_server.url + "/admin/?range=7d")

    charts = page.locator("svg.pg-chart")
    expect(charts).to_have_count(4)
    for index in range(4):
        chart = charts.nth(index)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 250 and box["height"] > 120, box
        assert chart.locator(".pg-chart-y-axis text").count() >= 2  # labelled y ticks
        assert chart.locator(".pg-chart-x-axis text").count() >= 2  # labelled days
        expect(chart.locator(".pg-chart-legend-label").first).to_be_visible()

    runs = page.locator('svg[data-chart="chart-runs"]')
    legend = runs.locator(".pg-chart-legend-label").all_text_contents()
    assert legend == ["VAT adviser", "<img src=x> Audit"], legend  # markup shown as text
    assert runs.locator("img").count() == 0
    assert runs.locator("rect.pg-chart-bar").count() >= 7
    bar = runs.locator("rect.pg-chart-bar").first.bounding_box()
    assert bar is not None and bar["height"] > 1 and bar["width"] > 1
    expect(page.locator('svg[data-chart="chart-cost"] .pg-chart-legend-label')).to_have_text("Cost (GBP)")
    expect(page.locator('svg[data-chart="chart-latency"] polyline')).to_have_count(1)
    expect(page.locator("#breakdown-agent")).to_contain_text("<img src=x> Audit")
    expect(page.locator(".pg-cards")).to_contain_text("GBP 0.1625")  # 13 runs × 0.0125
    screenshot(page, "dashboard-7-days")

    page.get_by_role("link", name="Today").click()
    expect(page.locator(".pg-period-label")).to_contain_text("Today")
    expect(page.locator(".pg-cards")).to_contain_text("GBP 0.0125")

    page.locator("#pg-period-from").fill("2026-03-05")
    page.locator("#pg-period-to").fill("2026-03-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("after it ends")
    expect(page.locator(".pg-period-label")).to_contain_text("This month")
    screenshot(page, "dashboard-bad-range")
    assert watcher.take() == []
