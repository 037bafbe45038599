"""ASVS 5.0 level 2, chapter V2 (Validation and business logic), as far as budgets go: costly calls to
model providers are limited per organisation and per agent, exactly, and only admins set the limits
of their own organisation (V8, the same chapter's authorisation side, is proven here for budgets)."""

from __future__ import annotations

import pytest

from agents.models import Budget, BudgetUsage, Execution, period_bounds
from tests.conftest import client_for
from tests.factories import AgentFactory, APIKeyFactory, BudgetFactory, PersonaFactory, release_now
from tests.support.api import assert_error

URL = "/api/v1/budgets/"
QUESTION = {"input": "What is the VAT on €1,000 at 19%?"}


@pytest.mark.usefixtures("mid_period_clock")  # the day filled, then the run, in one period
def test_v2_4_1_a_spent_budget_stops_costly_calls(org):
    """ASVS 5.0 V2.4.1: overuse of costly resources is prevented — once an organisation's daily token
    budget is spent, a run is refused before any provider call (429 ``budget_exceeded`` with
    ``Retry-After``), and recorded ``refused``. (Exact under concurrency on PostgreSQL:
    ``tests/agents/runtime/test_budgets_runtime.py::test_twenty_concurrent_runs_against_a_budget_for_ten_let_exactly_ten_through``.)"""
    vat_agent = AgentFactory(organization=org, status="active")
    PersonaFactory(agent=vat_agent, is_active=True)
    release_now(vat_agent)
    client = client_for(key=APIKeyFactory(organization=org, scopes=["execute"]).plaintext)
    assert client.post(f"/api/v1/agents/{vat_agent.pk}/execute/", QUESTION, format="json").status_code == 201
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100)
    BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], used=100)
    response = client.post(f"/api/v1/agents/{vat_agent.pk}/execute/", QUESTION, format="json")
    assert assert_error(response, 429)["code"] == "budget_exceeded"
    assert int(response["Retry-After"]) >= 1
    refused = Execution.objects.get(status="refused")
    assert not refused.steps.filter(kind="model_call").exists()


def test_v8_2_1_only_admins_and_admin_keys_set_budgets(org, viewer, editor):
    """ASVS 5.0 V8.2.1: setting, changing and removing budgets is restricted to the admin role or the
    admin scope — a viewer, an editor and a key without the admin scope get 403, nothing changes."""
    budget = BudgetFactory(organization=org, metric="cost", period="day", limit="5.00")
    write_key = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    for client in (client_for(viewer), client_for(editor), client_for(key=write_key.plaintext)):
        assert_error(
            client.post(URL, {"metric": "tokens", "period": "day", "limit": "1"}, format="json"), 403
        )
        assert_error(client.patch(f"{URL}{budget.pk}/", {"limit": "500"}, format="json"), 403)
        assert_error(client.delete(f"{URL}{budget.pk}/"), 403)
    budget.refresh_from_db()
    assert budget.limit == 5 and Budget.objects.count() == 1


def test_v8_4_1_another_organisations_budget_is_a_404_and_stays_unchanged(org, other_org, admin_user):
    """ASVS 5.0 V8.4.1: tenant isolation — another organisation's budget cannot be read, raised or
    removed (404), and stays as it was."""
    other = BudgetFactory(organization=other_org, metric="cost", period="day", limit="1.00")
    client = client_for(admin_user)
    assert_error(client.get(f"{URL}{other.pk}/"), 404)
    assert_error(client.patch(f"{URL}{other.pk}/", {"limit": "1000"}, format="json"), 404)
    assert_error(client.delete(f"{URL}{other.pk}/"), 404)
    other.refresh_from_db()
    assert other.limit == 1
