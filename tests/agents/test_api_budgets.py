"""``/api/v1/budgets/``: admin role or scope (reading included), scoped to the organisation, audited
writes through the services, consumption of the current period in each budget."""

from __future__ import annotations

import pytest

from agents.models import Budget, BudgetUsage, period_bounds
from tests.factories import AgentFactory, BudgetFactory
from tests.support.api import APIResourceTests, assert_error, results

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_period_clock")]

URL = "/api/v1/budgets/"


class TestBudgetAPI(APIResourceTests):
    model = Budget
    factory = BudgetFactory
    url = URL
    create_data = {"metric": "cost", "period": "month", "limit": "250.000000"}
    update_data = {"limit": "300.000000"}
    invalid_data = {"metric": "dollars", "period": "week", "limit": "0"}
    read_role = "admin"
    read_scope = "admin"
    write_role = "admin"
    write_scope = "admin"

    _kinds = [(m, p) for m in ("cost", "tokens") for p in ("day", "month")]

    def make_object(self, organization, parent=None):
        # One budget per organisation, metric and period: agents' budgets give the lists many rows.
        return BudgetFactory(organization=organization, agent=AgentFactory(organization=organization))

    def make_list_objects(self, organization, parent, count: int) -> list:
        budgets = []
        for _ in range(count):
            agent = AgentFactory(organization=organization)
            budget = BudgetFactory(organization=organization, agent=agent, metric="tokens", limit=1000)
            BudgetUsage.objects.create(
                budget=budget, period_start=period_bounds("day")[0], used=10, reserved=5
            )
            budgets.append(budget)
        return budgets


def test_consumption_of_the_current_period_is_in_each_budget(org, admin_client_api):
    """``used``, ``reserved`` and ``remaining`` of the period running now (not an earlier one), in the
    budget's unit, with the period's bounds."""
    budget = BudgetFactory(organization=org, metric="cost", period="day", limit="2.50")
    start, end = period_bounds("day")
    BudgetUsage.objects.create(budget=budget, period_start=start, used=1_250_000, reserved=250_000)
    BudgetUsage.objects.create(budget=budget, period_start=start.replace(year=start.year - 1), used=9)
    tokens = BudgetFactory(organization=org, metric="tokens", period="month", limit=1000)
    body = admin_client_api.get(f"{URL}{budget.pk}/").json()
    assert (body["limit"], body["used"], body["reserved"], body["remaining"]) == (
        "2.500000",
        "1.250000",
        "0.250000",
        "1.000000",
    )
    assert body["agent"] is None and body["metric"] == "cost" and body["period"] == "day"
    assert body["period_start"].startswith(start.strftime("%Y-%m-%d")) and body["resets_at"].startswith(
        end.strftime("%Y-%m-%d")
    )
    body = admin_client_api.get(f"{URL}{tokens.pk}/").json()
    assert (body["limit"], body["used"], body["reserved"], body["remaining"]) == ("1000", "0", "0", "1000")


def test_filter_by_agent_and_organisation_wide(org, admin_client_api):
    agent = AgentFactory(organization=org)
    own = BudgetFactory(organization=org, agent=agent)
    other = BudgetFactory(organization=org, agent=AgentFactory(organization=org))
    wide = BudgetFactory(organization=org)
    ids = lambda **q: {row["id"] for row in results(admin_client_api.get(URL, q))}  # noqa: E731
    assert ids(agent=agent.pk) == {own.pk}
    assert ids(organization_wide="true") == {wide.pk}
    assert ids() == {own.pk, other.pk, wide.pk}
    assert_error(admin_client_api.get(URL, {"agent": "x"}), 400)


def test_an_editor_cannot_read_budgets(org, editor):
    from tests.conftest import client_for

    BudgetFactory(organization=org)
    body = assert_error(client_for(editor).get(URL), 403)
    assert "needs admin or higher" in body["message"]


def test_bad_input_gets_field_messages(org, admin_client_api):
    agent = AgentFactory(organization=org)
    cases = [
        ({"metric": "tokens", "period": "day", "limit": "10.5"}, "limit", "A token budget is a whole number"),
        ({"metric": "cost", "period": "day", "limit": "-1"}, "limit", "The limit must be greater than zero."),
        ({"metric": "cost", "period": "day"}, "limit", "This field is required."),
        ({"metric": "cost", "period": "day", "limit": "abc"}, "limit", "A valid number is required."),
        ({"agent": agent.pk, "metric": "cost", "period": "day", "limit": "1", "x": 1}, "x", ""),
    ]
    for data, field, message in cases:
        body = assert_error(admin_client_api.post(URL, data, format="json"), 400, fields=[field])
        assert message in " ".join(body["errors"][field]), body
    assert not Budget.objects.exists()


def test_another_organisations_agent_is_not_found(org, other_org, admin_client_api):
    foreign = AgentFactory(organization=other_org)
    response = admin_client_api.post(
        URL, {"agent": foreign.pk, "metric": "cost", "period": "day", "limit": "1"}, format="json"
    )
    assert_error(response, 404, fields=["agent"])


def test_a_second_budget_of_a_kind_is_a_conflict(org, admin_client_api):
    data = {"metric": "tokens", "period": "day", "limit": "1000"}
    assert admin_client_api.post(URL, data, format="json").status_code == 201
    body = assert_error(admin_client_api.post(URL, data, format="json"), 409)
    assert body["message"] == "The organisation already has a daily tokens budget: change that one."
    agent = AgentFactory(organization=org, name="VAT adviser")
    data["agent"] = agent.pk
    assert admin_client_api.post(URL, data, format="json").status_code == 201
    body = assert_error(admin_client_api.post(URL, data, format="json"), 409)
    assert "The agent 'VAT adviser' already has a daily tokens budget" in body["message"]


def test_a_change_keeps_what_the_period_consumed(org, admin_client_api):
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], used=900)
    body = admin_client_api.patch(f"{URL}{budget.pk}/", {"limit": "2000"}, format="json").json()
    assert (body["limit"], body["used"], body["remaining"]) == ("2000", "900", "1100")


@pytest.mark.parametrize(
    "change",
    [{"metric": "tokens", "limit": "1000000"}, {"period": "month"}, {"agent": "AGENT"}, {"agent": None}],
)
def test_what_a_budget_counts_cannot_change(org, admin_client_api, change):
    """Changing the metric, period or agent would reinterpret what the budget has counted (1.60 of
    cost read as 1,600,000 tokens): 409 ``conflict`` naming the field, saying to delete the budget and
    create another. A 409, not a 400: the body is valid (schemathesis sent schema-valid PUTs and PATCHes
    and got 400); what it clashes with is the stored budget, which no schema can state."""
    agent = AgentFactory(organization=org)
    budget = BudgetFactory(organization=org, agent=agent, metric="cost", period="day", limit="2.00")
    BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], used=1_600_000)
    other = AgentFactory(organization=org)
    change = {key: (other.pk if value == "AGENT" else value) for key, value in change.items()}
    body = assert_error(admin_client_api.patch(f"{URL}{budget.pk}/", change, format="json"), 409)
    assert body["code"] == "conflict"
    field = next(key for key in change if key != "limit")
    assert "Delete the budget and create another" in body["errors"][field][0]
    budget.refresh_from_db()
    assert (budget.agent, budget.metric, budget.period, budget.limit) == (agent, "cost", "day", 2)


def test_a_full_update_with_the_same_agent_metric_and_period_is_allowed(org, admin_client_api):
    budget = BudgetFactory(organization=org, metric="cost", period="day", limit="2.00")
    body = {"agent": None, "metric": "cost", "period": "day", "limit": "3.00"}
    response = admin_client_api.put(f"{URL}{budget.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["limit"] == "3.000000"


def test_a_cost_budget_says_which_agents_it_cannot_limit(org, admin_client_api):
    """``limits_nothing_for``: the agents whose provider has no prices (their calls cost 0), for a cost
    budget; a token budget limits them all."""
    from tests.factories import ModelProviderFactory  # noqa: PLC0415

    free = ModelProviderFactory(organization=org, kind="offline", price_input_per_1k=0, price_output_per_1k=0)
    priced = ModelProviderFactory(organization=org, kind="offline", price_output_per_1k="1.00")
    unlimited = AgentFactory(organization=org, name="Local drafting", provider=free)
    limited = AgentFactory(organization=org, name="Priced helper", provider=priced)
    org_cost = BudgetFactory(organization=org, metric="cost", period="month", limit="10.00")
    agent_cost = BudgetFactory(organization=org, agent=unlimited, metric="cost", period="day", limit="1.00")
    priced_cost = BudgetFactory(organization=org, agent=limited, metric="cost", period="day", limit="1.00")
    tokens = BudgetFactory(organization=org, metric="tokens", period="month", limit=1000)
    listed = {row["id"]: row["limits_nothing_for"] for row in results(admin_client_api.get(URL))}
    assert "Local drafting" in listed[org_cost.pk] and "Priced helper" not in listed[org_cost.pk]
    assert listed[agent_cost.pk] == ["Local drafting"]
    assert listed[priced_cost.pk] == [] and listed[tokens.pk] == []
