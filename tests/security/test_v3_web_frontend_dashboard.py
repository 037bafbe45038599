"""The dashboard (issue 18): names the firm types (agents, API keys, models) reach its SVG charts and
tables as text, never as markup, and its charts need nothing the strict CSP refuses; the date range it
reads from the query string is validated, and what cannot be read is a message, never an error page;
another organisation's runs never reach it."""

from __future__ import annotations

import pytest

from agents.models import Execution
from tests.factories import AgentFactory, ExecutionFactory, MembershipFactory, UserFactory
from tests.support.admin import login

# The page reads "today" and "this month" after the test made its runs (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("months_last_second_clock")]

NAME = '"><svg onload=alert(1)><text>'


def test_names_in_charts_and_breakdowns_are_escaped(owner_client, org):
    """ASVS 5.0 V3.2.2: text is inserted as text — an agent's and a model's name with markup appear
    escaped in the chart legend, the bars' titles and the breakdown tables; no inline style or script
    is written (the CSP allows neither)."""
    agent = AgentFactory(organization=org, name=NAME)
    ExecutionFactory(agent=agent, model=NAME)
    html = owner_client.get("/admin/?range=today").content.decode()
    assert NAME not in html and "<svg onload" not in html
    assert "&quot;&gt;&lt;svg onload=alert(1)&gt;&lt;text&gt;" in html
    dashboard = html[html.index('id="content-main"') :]
    assert (
        "style=" not in dashboard
        and "<script" not in dashboard
        and "onload=" not in dashboard.replace("svg onload=alert", "")
    )


@pytest.mark.parametrize(
    "query",
    [
        "range=custom&from=2026-13-01&to=2026-12-31",
        "range=custom&from=2026-01-01&to=2026-01-01%27%20OR%201=1",
        "range=custom&from=1-1-1&to=2026-01-01",
        "range=custom&from=99999-01-01&to=99999-01-02",
        "range=custom&from=2026-01-01&to=" + "9" * 5000,
        "range=custom&from[]=x&to=2026-01-01",
        "range=%00&from=&to=",
    ],
)
def test_the_date_range_is_validated_and_never_a_server_error(owner_client, org, query):
    """ASVS 5.0 V2.2.1: the custom range is validated against what is expected (two ISO dates, in
    order, at most 367 days, years 2000–2999); anything else answers the default range with a
    message (200), never a 500, and the input is echoed back only escaped and shortened."""
    response = owner_client.get(f"/admin/?{query}")
    assert response.status_code == 200
    period = response.context["dashboard_period"]
    assert period.key == "month"
    assert len(period.raw_from) <= 20 and len(period.raw_to) <= 20
    assert "' OR 1=1" not in response.content.decode()


def test_another_organisations_runs_never_reach_the_dashboard(org, other_org):
    """ASVS 5.0 V8.2.2: data-specific access — the dashboard's figures, charts and breakdowns count
    only the selected organisation's runs, whatever range is asked for."""
    ExecutionFactory(agent=AgentFactory(organization=other_org, name="Their agent"), model="their-model")
    member = UserFactory(username="ours")
    MembershipFactory(user=member, organization=org, role="owner")
    for query in ("range=today", "range=30d", "range=custom&from=2000-01-01&to=2000-12-31"):
        response = login(member).get(f"/admin/?{query}")
        html = response.content.decode()
        assert response.context["runs"] == 0 and "Their agent" not in html and "their-model" not in html
    assert Execution.objects.filter(organization=other_org).count() == 1
