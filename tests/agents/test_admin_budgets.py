"""Budgets in the staff UI: the list with each budget's consumption, the form (through the audited
services, with their messages), who may see and change them, and the dashboard panel."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Budget, BudgetUsage, period_bounds
from prisma_glow.audit.models import AuditEvent
from tests.factories import AgentFactory, BudgetFactory
from tests.support.admin import login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_period_clock")]

LIST = "/admin/agents/budget/"


@pytest.fixture
def admin_client(admin_user):
    return login(admin_user)


def test_the_list_shows_consumption_this_period(admin_client, org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    budget = BudgetFactory(organization=org, agent=agent, metric="cost", period="day", limit="2.00")
    BudgetUsage.objects.create(
        budget=budget, period_start=period_bounds("day")[0], used=1_500_000, reserved=100_000
    )
    BudgetFactory(organization=org, metric="tokens", period="month", limit=1000)
    html = admin_client.get(LIST).content.decode()
    assert "VAT adviser" in html and "EUR 1.5000 of EUR 2.0000" in html and "EUR 0.1000" in html
    assert "Organisation (every agent)" in html and "0 tokens of 1,000 tokens" in html
    assert '<meter min="0" max="100" low="80" high="99" optimum="0" value="80">' in html


def test_adding_a_budget_goes_through_the_service(admin_client, org):
    agent = AgentFactory(organization=org)
    response = admin_client.post(
        f"{LIST}add/", {"agent": agent.pk, "metric": "tokens", "period": "month", "limit": "50000"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    budget = Budget.objects.get()
    assert (budget.agent, budget.metric, budget.period, budget.limit) == (agent, "tokens", "month", 50000)
    assert AuditEvent.objects.filter(action="budget.create", object_id=str(budget.pk)).exists()
    response = admin_client.post(
        f"{LIST}{budget.pk}/change/",
        {"agent": agent.pk, "metric": "tokens", "period": "month", "limit": "60000"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="budget.update", object_id=str(budget.pk)).exists()
    response = admin_client.post(f"{LIST}{budget.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Budget.objects.exists()
    assert AuditEvent.objects.filter(action="budget.delete", object_id=str(budget.pk)).exists()


def test_the_form_says_what_is_wrong(admin_client, org):
    BudgetFactory(organization=org, metric="cost", period="day")
    cases = [
        ({"metric": "cost", "period": "day", "limit": "0"}, "The limit must be greater than zero."),
        (
            {"metric": "tokens", "period": "day", "limit": "1.5"},
            "A token budget is a whole number of tokens.",
        ),
        (
            {"metric": "cost", "period": "day", "limit": "5"},
            "The organisation already has a daily cost budget",
        ),
    ]
    for data, message in cases:
        response = admin_client.post(f"{LIST}add/", {"agent": "", **data})
        assert response.status_code == 200 and message in response.content.decode(), message
    assert Budget.objects.count() == 1


def test_only_admins_and_owners_see_budgets(staff_client, viewer_admin_client, org):
    budget = BudgetFactory(organization=org)
    for client in (staff_client, viewer_admin_client):
        assert client.get(LIST).status_code == 403
        assert client.get(f"{LIST}add/").status_code == 403
        assert client.get(f"{LIST}{budget.pk}/change/").status_code == 403


def test_another_organisations_budget_is_not_found(admin_client, other_org):
    other = BudgetFactory(organization=other_org)
    assert admin_client.get(f"{LIST}{other.pk}/change/").status_code == 404
    assert admin_client.post(f"{LIST}{other.pk}/delete/", {"post": "yes"}).status_code == 404
    assert Budget.objects.filter(pk=other.pk).exists()


def test_the_agent_choices_are_the_organisations(admin_client, org, other_org):
    AgentFactory(organization=org, name="Ours")
    AgentFactory(organization=other_org, name="Theirs")
    html = admin_client.get(f"{LIST}add/").content.decode()
    assert "Ours" in html and "Theirs" not in html


# --- The dashboard panel --------------------------------------------------------------------------


def test_the_dashboard_shows_each_budget_against_its_limit(owner_client, org):
    spent = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    BudgetUsage.objects.create(budget=spent, period_start=period_bounds("day")[0], used=1000)
    BudgetFactory(organization=org, agent=AgentFactory(organization=org, name="Audit helper"), limit="5.00")
    html = owner_client.get("/admin/").content.decode()
    assert 'aria-labelledby="budgets-title"' in html
    assert "1,000 tokens of 1,000 tokens" in html and "spent" in html
    assert "Audit helper: daily cost" in html and "EUR 0.0000 of EUR 5.0000" in html


def test_the_dashboard_offers_a_budget_when_there_is_none(owner_client, org):
    html = owner_client.get("/admin/").content.decode()
    assert "No budget limits what runs may consume." in html


def test_editors_do_not_see_the_budgets_panel(staff_client, org):
    BudgetFactory(organization=org)
    html = staff_client.get("/admin/").content.decode()
    assert "budgets-title" not in html


def test_the_panel_costs_one_query_whatever_the_number_of_budgets(owner_client, org):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get("/admin/").status_code == 200
        return len(captured)

    BudgetFactory(organization=org)
    owner_client.get("/admin/")
    few = count()
    for _ in range(8):
        budget = BudgetFactory(organization=org, agent=AgentFactory(organization=org), metric="tokens")
        BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], used=5)
    assert count() == few


def test_refused_runs_are_listed_and_filtered_among_executions(owner_client, org):
    """The executions list filters by the new status and marks a refused run with its own badge."""
    from tests.factories import ExecutionFactory

    agent = AgentFactory(organization=org)
    refused = ExecutionFactory(
        agent=agent, status="refused", output="", error="The organisation's daily cost budget …"
    )
    ExecutionFactory(agent=agent, status="completed")
    html = owner_client.get("/admin/agents/execution/?status__exact=refused").content.decode()
    assert 'class="pg-badge pg-badge-refused">Refused (budget)</span>' in html
    assert html.count("pg-badge-completed") == 0
    page = owner_client.get(f"/admin/agents/execution/{refused.pk}/change/").content.decode()
    assert "The organisation&#x27;s daily cost budget" in page and "a budget could not cover the run" in page


def test_what_a_budget_counts_is_read_only_on_its_change_page(admin_client, org):
    """The agent, metric and period are fixed at creation: shown, not editable; a forged post that
    changes them changes only the limit."""
    agent = AgentFactory(organization=org, name="VAT adviser")
    budget = BudgetFactory(organization=org, agent=agent, metric="cost", period="day", limit="2.00")
    html = admin_client.get(f"{LIST}{budget.pk}/change/").content.decode()
    assert 'name="limit"' in html
    assert 'name="metric"' not in html and 'name="period"' not in html and 'name="agent"' not in html
    response = admin_client.post(
        f"{LIST}{budget.pk}/change/", {"agent": "", "metric": "tokens", "period": "month", "limit": "5"}
    )
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.agent, budget.metric, budget.period, budget.limit) == (agent, "cost", "day", 5)
    assert 'name="metric"' in admin_client.get(f"{LIST}add/").content.decode()


def test_a_cost_budget_that_limits_nothing_is_flagged_in_the_list_and_on_the_dashboard(admin_client, org):
    """An agent on a provider without prices (or the offline engine) costs 0 a call: a cost budget
    never limits it, and the list and the dashboard say so; a token budget is not flagged."""
    from tests.factories import ModelProviderFactory  # noqa: PLC0415

    free = ModelProviderFactory(organization=org, kind="offline", price_input_per_1k=0, price_output_per_1k=0)
    priced = ModelProviderFactory(organization=org, kind="offline", price_output_per_1k="1.00")
    unlimited = AgentFactory(organization=org, name="Local drafting", provider=free)
    AgentFactory(organization=org, name="Priced helper", provider=priced)
    BudgetFactory(organization=org, agent=unlimited, metric="cost", period="day", limit="1.00")
    BudgetFactory(organization=org, metric="cost", period="month", limit="10.00")
    BudgetFactory(organization=org, metric="tokens", period="month", limit=1000)
    html = admin_client.get(LIST).content.decode()
    assert html.count("Limits nothing for Local drafting: no prices on the provider") == 2
    assert "Priced helper:" not in html
    html = admin_client.get("/admin/").content.decode()
    assert html.count("Limits nothing for Local drafting") == 2
    form = admin_client.get(f"{LIST}add/").content.decode()
    assert "A cost budget limits nothing for agents whose provider has no prices" in form


def test_the_list_reads_the_unpriced_agents_once(admin_client, org):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST).status_code == 200
        return len(captured)

    BudgetFactory(organization=org, metric="cost")
    few = count()
    for _ in range(8):
        BudgetFactory(organization=org, agent=AgentFactory(organization=org), metric="cost")
    assert count() == few
