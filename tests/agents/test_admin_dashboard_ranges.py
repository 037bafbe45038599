"""The dashboard over a date range (issue 18, the audit partner): presets and custom days, a clear
message for a custom range that cannot be read, breakdowns by agent, model, source and user against
known data, the charts' figures per day, the organisation's currency, a constant number of queries,
and who sees what. Runs on PostgreSQL (percentile_cont) and SQLite (the registered aggregate)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Execution
from prisma_glow.tenancy import services as tenancy_services
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    ExecutionFactory,
    MembershipFactory,
    UserFactory,
)
from tests.support.admin import login

# The page reads "today" and "this month" after the test made its runs (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("months_last_second_clock")]

ESCAPED_NAME = "Audit &lt;b&gt;&amp; helper&lt;/b&gt;"


def at(days_ago: int) -> dt.datetime:
    """Noon (local) ``days_ago`` days before today."""
    day = timezone.localdate() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(12), tzinfo=timezone.get_current_timezone())


def run(agent, days_ago: int, **fields):
    execution = ExecutionFactory(agent=agent, **fields)
    Execution.objects.filter(pk=execution.pk).update(created_at=at(days_ago))
    return execution


@pytest.fixture
def known(org, other_org):
    """Known runs: today, 5, 20 and 100 days ago, and another organisation's today."""
    vat = AgentFactory(organization=org, name="VAT adviser")
    audit = AgentFactory(organization=org, name="Audit <b>& helper</b>")
    mira = UserFactory(username="mira")
    tom = UserFactory(username="tom")
    key = APIKeyFactory(organization=org, name="Bookkeeping sync")
    for latency in (100, 200, 300):
        run(vat, 0, latency_ms=latency, cost=Decimal("0.01"), model="gpt-4o", source="api", actor_user=mira)
    run(audit, 0, status="blocked", latency_ms=1500, cost=None, model="", source="console", actor_user=tom)
    for latency in (1000, 3000):
        run(
            vat,
            5,
            latency_ms=latency,
            cost=Decimal("0.5"),
            model="gpt-4o-mini",
            source="api",
            actor_api_key=key,
        )
    run(audit, 20, status="failed", latency_ms=50, cost=Decimal("0.2"), model="claude", source="eval")
    run(vat, 100, latency_ms=10, cost=Decimal("9"), model="gpt-4o", source="cli")
    elsewhere = AgentFactory(organization=other_org, name="Other firm's agent")
    for _ in range(4):
        run(elsewhere, 0, model="their-model", cost=Decimal("7"))
    return {"vat": vat, "audit": audit, "key": key}


def table(ctx, key):
    return {
        row["label"]: row for row in next(t for t in ctx["dashboard_breakdowns"] if t["key"] == key)["rows"]
    }


def test_today_counts_todays_runs_by_agent_model_source_and_user(owner_client, known):
    response = owner_client.get("/admin/?range=today")
    ctx = response.context
    assert response.status_code == 200
    assert ctx["dashboard_period"].key == "today" and len(ctx["dashboard_period"].days) == 1
    assert ctx["runs"] == 4 and ctx["blocked"] == 1 and ctx["cost"] == Decimal("0.03")
    by_agent = table(ctx, "agent")
    assert by_agent["VAT adviser"]["runs"] == 3 and by_agent["VAT adviser"]["cost"] == Decimal("0.03")
    assert by_agent["VAT adviser"]["p95"] == pytest.approx(290)  # percentile_cont of 100, 200, 300
    assert by_agent["Audit <b>& helper</b>"]["blocked"] == 1
    assert list(by_agent) == ["VAT adviser", "Audit <b>& helper</b>"]  # the busiest first
    assert set(table(ctx, "model")) == {"gpt-4o", "No model (offline engine, or stopped before the model)"}
    assert {label: row["runs"] for label, row in table(ctx, "source").items()} == {
        "API": 3,
        "Test console": 1,
    }
    assert {label: row["runs"] for label, row in table(ctx, "user").items()} == {"mira": 3, "tom": 1}
    html = response.content.decode()
    assert ESCAPED_NAME in html and "<b>& helper</b>" not in html
    assert "Other firm" not in html and "their-model" not in html


def test_seven_days_adds_the_api_keys_runs(owner_client, known):
    ctx = owner_client.get("/admin/?range=7d").context
    assert ctx["runs"] == 6 and ctx["cost"] == Decimal("1.03")
    assert len(ctx["dashboard_period"].days) == 7
    assert table(ctx, "agent")["VAT adviser"]["runs"] == 5
    assert table(ctx, "agent")["VAT adviser"]["cost"] == Decimal("1.03")
    assert {label: row["runs"] for label, row in table(ctx, "model").items()} == {
        "gpt-4o": 3,
        "gpt-4o-mini": 2,
        "No model (offline engine, or stopped before the model)": 1,
    }
    assert table(ctx, "user")["API key “Bookkeeping sync”"]["runs"] == 2
    # p95 of 100, 200, 300, 1500, 1000, 3000 (percentile_cont): 2625 ms.
    assert ctx["p95_latency_ms"] == pytest.approx(2625)


def test_thirty_days_and_this_month(owner_client, known):
    ctx = owner_client.get("/admin/?range=30d").context
    assert ctx["runs"] == 7 and ctx["failed"] == 1 and len(ctx["dashboard_period"].days) == 30
    assert table(ctx, "source")["Evaluation"]["runs"] == 1
    month = owner_client.get("/admin/?range=month").context
    first = timezone.localdate().replace(day=1)
    expected = sum(
        1
        for days_ago, n in [(0, 4), (5, 2), (20, 1), (100, 1)]
        for _ in range(n)
        if at(days_ago).date() >= first
    )
    assert month["runs"] == expected and month["dashboard_period"].start == first
    # Without a range the dashboard shows this month.
    assert owner_client.get("/admin/").context["runs"] == expected


def test_a_custom_range_selects_its_days_only(owner_client, known):
    day = at(100).date().isoformat()
    response = owner_client.get(f"/admin/?range=custom&from={day}&to={day}")
    ctx = response.context
    assert ctx["dashboard_period"].key == "custom" and ctx["runs"] == 1
    assert ctx["cost"] == Decimal("9") and table(ctx, "source")["Command line"]["runs"] == 1
    html = response.content.decode()
    assert f'value="{day}"' in html  # the form keeps the chosen days
    wide = owner_client.get(f"/admin/?range=custom&from={at(120).date()}&to={timezone.localdate()}").context
    assert wide["runs"] == 8 and len(wide["dashboard_period"].days) == 121


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-02-30&to=2026-03-02", "The from date '2026-02-30' is not a date"),
        ("from=2026-03-01&to=yesterday", "The to date 'yesterday' is not a date"),
        ("from=&to=2026-03-01", "Give a from date (YYYY-MM-DD) for a custom range."),
        ("from=2026-03-05&to=2026-03-01", "The range starts (2026-03-05) after it ends (2026-03-01)"),
        ("from=2020-01-01&to=2026-01-01", "A custom range covers at most 367 days"),
        ("from=0001-01-01&to=0001-01-02", "out of range"),
        ("from=9999-12-30&to=9999-12-31", "out of range"),
        ("from=%00%27%3Cscript%3E&to=2026-01-01", "is not a date"),
    ],
)
def test_a_custom_range_that_cannot_be_read_says_why_and_shows_this_month(
    owner_client, known, query, message
):
    response = owner_client.get(f"/admin/?range=custom&{query}")
    assert response.status_code == 200
    period = response.context["dashboard_period"]
    assert message in period.error and "Showing this month instead." in period.error
    assert period.key == "month"
    html = response.content.decode()
    assert 'role="alert"' in html and "<script>" not in html


def test_an_unknown_range_is_the_default_without_a_message(owner_client, known):
    response = owner_client.get("/admin/?range=fortnight")
    assert response.status_code == 200
    assert (
        response.context["dashboard_period"].key == "month" and not response.context["dashboard_period"].error
    )


def test_the_charts_plot_each_day_of_the_range(owner_client, known):
    charts = {c.key: c for c in owner_client.get("/admin/?range=7d").context["dashboard_charts"]}
    assert list(charts) == ["runs", "cost", "latency", "unanswered"]
    runs = charts["runs"]
    assert [s for s in runs.series_labels] == ["VAT adviser", "Audit <b>& helper</b>"]
    assert [row["values"] for row in runs.table][-1] == ["3", "1"] and runs.table[-6]["values"] == ["2", "0"]
    assert charts["cost"].table[-6]["values"] == ["EUR 1.0000"] and charts["cost"].series_labels == [
        "Cost (EUR)"
    ]
    latency = charts["latency"]
    assert latency.table[-1]["values"] == ["1.3 s"]  # p95 of 100, 200, 300, 1500 ms: 1,320 ms
    assert latency.table[-2]["values"] == ["—"] and latency.table[-6]["values"] == ["2.9 s"]
    assert charts["unanswered"].table[-1]["values"] == ["1", "0", "0"]


def test_runs_past_the_five_busiest_agents_are_one_series(owner_client, org):
    agents = [AgentFactory(organization=org, name=f"Agent {i}") for i in range(7)]
    for i, agent in enumerate(agents):
        for _ in range(7 - i):
            run(agent, 0)
    runs = owner_client.get("/admin/?range=today").context["dashboard_charts"][0]
    assert runs.series_labels == ["Agent 0", "Agent 1", "Agent 2", "Agent 3", "Agent 4", "Other agents"]
    assert runs.table[-1]["values"] == ["7", "6", "5", "4", "3", "3"]


def test_the_currency_is_euro_by_default_and_the_organisations_choice_everywhere(
    owner_client, owner, org, known
):
    html = owner_client.get("/admin/?range=today").content.decode()
    assert "EUR 0.0300" in html and "Cost (EUR)" in html
    tenancy_services.organization_update(organization=org, actor=owner, currency="GBP")
    html = owner_client.get("/admin/?range=today").content.decode()
    assert "GBP 0.0300" in html and "Cost per day (GBP)" in html and "EUR 0.0300" not in html
    execution = Execution.objects.filter(organization=org, cost=Decimal("0.01")).first()
    detail = owner_client.get(f"/admin/agents/execution/{execution.pk}/change/").content.decode()
    assert "GBP 0.0100" in detail
    agent_page = owner_client.get(f"/admin/agents/agent/{known['vat'].pk}/overview/").content.decode()
    assert "GBP 1.0300" in agent_page or "GBP 10.0300" in agent_page


def test_latency_is_shown_one_way_on_every_page(owner_client, org):
    slow = ExecutionFactory(agent=AgentFactory(organization=org), latency_ms=30061)
    detail = owner_client.get(f"/admin/agents/execution/{slow.pk}/change/").content.decode()
    listing = owner_client.get("/admin/agents/execution/").content.decode()
    for html in (detail, listing):
        assert "30.1 s" in html and "30061 ms" not in html and "30061" not in html


def test_the_number_of_queries_does_not_depend_on_the_data_or_the_range(owner_client, org):
    agent = AgentFactory(organization=org)
    run(agent, 0)
    with CaptureQueriesContext(connection) as small:
        assert owner_client.get("/admin/?range=30d").status_code == 200
    agents = [AgentFactory(organization=org) for _ in range(12)]
    for i in range(240):
        run(agents[i % 12], i % 30, model=f"model-{i % 9}", latency_ms=i + 1, cost=Decimal("0.001"))
    with CaptureQueriesContext(connection) as large:
        assert owner_client.get("/admin/?range=30d").status_code == 200
    with CaptureQueriesContext(connection) as year:
        first = timezone.localdate() - dt.timedelta(days=366)
        assert (
            owner_client.get(f"/admin/?range=custom&from={first}&to={timezone.localdate()}").status_code
            == 200
        )
    assert len(small.captured_queries) == len(large.captured_queries) == len(year.captured_queries)
    # 21, and 1 for the pending activation requests' panel (agents.admin.activation_pages).
    assert len(large.captured_queries) <= 22


def test_a_viewer_sees_the_dashboard(viewer_admin_client, known):
    response = viewer_admin_client.get("/admin/?range=7d")
    assert response.status_code == 200 and response.context["runs"] == 6
    assert "Breakdowns" in response.content.decode()


def test_another_organisations_member_never_sees_these_runs(other_org, known):
    stranger = UserFactory(username="stranger")
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    response = login(stranger).get("/admin/?range=today")
    ctx = response.context
    assert ctx["runs"] == 4 and list(table(ctx, "agent")) == ["Other firm's agent"]
    html = response.content.decode()
    assert "VAT adviser" not in html and "gpt-4o" not in html and "mira" not in html


def test_anonymous_visitors_are_sent_to_sign_in(client, known):
    response = client.get("/admin/?range=today")
    assert response.status_code == 302 and "/login/" in response["Location"]
