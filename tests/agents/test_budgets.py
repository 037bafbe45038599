"""Budgets: the model's rules, the audited services, the periods, and the ledger's reservation and
settlement figures (``agents.runtime.budgets``) against the database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from agents import services
from agents.models import (
    RUN_GRACE,
    Budget,
    BudgetReservation,
    BudgetUsage,
    ExecutionStatus,
    period_bounds,
    show_units,
    to_units,
)
from agents.runtime.budgets import NOTHING, Charge, Ledger, precheck, release_stale
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import BudgetExceeded, ConflictError
from tests.factories import AgentFactory, BudgetFactory, ExecutionFactory, ModelProviderFactory
from tests.support.models import assert_conflict, assert_db_rejects

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_period_clock")]

UTC = dt.UTC


def usage(budget) -> tuple[int, int]:
    row = BudgetUsage.objects.filter(budget=budget, period_start=period_bounds(budget.period)[0]).first()
    return (row.used, row.reserved) if row else (0, 0)


# --- Model ------------------------------------------------------------------------------------


def test_limit_must_be_positive(org):
    """The database refuses a limit of zero; ``full_clean`` says so in words."""
    with pytest.raises(ValidationError) as caught:
        Budget(organization=org, metric="cost", period="day", limit=Decimal("0")).full_clean()
    assert "The limit must be greater than zero." in str(caught.value)
    assert_db_rejects(lambda: Budget.objects.create(organization=org, metric="cost", period="day", limit=0))


def test_token_limit_is_a_whole_number(org):
    with pytest.raises(ValidationError) as caught:
        Budget(organization=org, metric="tokens", period="day", limit=Decimal("10.5")).full_clean()
    assert caught.value.message_dict["limit"] == ["A token budget is a whole number of tokens."]
    Budget(organization=org, metric="cost", period="day", limit=Decimal("10.5")).full_clean()


def test_one_budget_per_organisation_or_agent_metric_and_period(org):
    """An organisation-wide and an agent's budget of the same kind coexist; a second of either is refused
    by the database (partial unique constraints: NULL agents would never collide in a plain one)."""
    agent = AgentFactory(organization=org)
    BudgetFactory(organization=org, metric="tokens", period="month", limit=1000)
    BudgetFactory(organization=org, agent=agent, metric="tokens", period="month", limit=500)
    assert_db_rejects(
        lambda: Budget.objects.create(organization=org, metric="tokens", period="month", limit=5)
    )
    assert_conflict(
        Budget(organization=org, metric="tokens", period="month", limit=5),
        "The organisation already has a budget for this metric and period",
        field="metric",
    )
    with pytest.raises(ValidationError) as caught:
        Budget(organization=org, agent=agent, metric="tokens", period="month", limit=5).full_clean()
    assert "This agent already has a budget for this metric and period" in str(caught.value)


def test_units_are_exact_integers():
    """Cost counts in millionths, rounded up; tokens in tokens."""
    assert to_units("cost", Decimal("0.1")) == 100_000
    assert to_units("cost", Decimal("0.0000001")) == 1
    assert to_units("tokens", Decimal("1200")) == 1200
    assert show_units("cost", 1_250_000) == "1.25"
    assert show_units("cost", 1_234) == "0.001234"
    assert show_units("tokens", 12_000) == "12,000 tokens"


# --- Periods ----------------------------------------------------------------------------------


def test_day_and_month_periods_in_the_configured_time_zone(settings):
    """A day runs from local midnight to the next; a month from the 1st to the 1st of the next (December
    into January included), in ``TIME_ZONE``."""
    now = dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert period_bounds("day", now) == (
        dt.datetime(2026, 12, 31, tzinfo=UTC),
        dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("month", now) == (
        dt.datetime(2026, 12, 1, tzinfo=UTC),
        dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    timezone.deactivate()
    # 23:30 UTC on 31 December is already 1 January in Berlin.
    start, end = period_bounds("day", now)
    assert start == dt.datetime(2027, 1, 1, tzinfo=berlin) and end == dt.datetime(2027, 1, 2, tzinfo=berlin)
    assert period_bounds("month", now)[1] == dt.datetime(2027, 2, 1, tzinfo=berlin)


# --- Services ---------------------------------------------------------------------------------


def test_create_update_delete_are_audited(org, admin_user):
    agent = AgentFactory(organization=org)
    budget = services.budget_create(
        organization=org, actor=admin_user, agent=agent, metric="tokens", period="day", limit=Decimal("5000")
    )
    services.budget_update(budget=budget, actor=admin_user, limit=Decimal("8000"))
    budget.refresh_from_db()
    assert budget.limit == 8000
    services.budget_delete(budget=budget, actor=admin_user)
    assert not Budget.objects.filter(pk=budget.pk).exists()
    actions = list(
        AuditEvent.objects.filter(organization=org, object_type="agents.budget")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["budget.create", "budget.update", "budget.delete"]
    update = AuditEvent.objects.get(organization=org, action="budget.update")
    assert update.before["limit"] != update.after["limit"]


def test_create_refuses_another_organisations_agent(org, other_org, admin_user):
    foreign = AgentFactory(organization=other_org)
    with pytest.raises(ValidationError) as caught:
        services.budget_create(
            organization=org, actor=admin_user, agent=foreign, metric="cost", period="day", limit=1
        )
    assert caught.value.message_dict["agent"] == ["The agent must belong to the budget's organisation."]


def test_a_second_budget_of_the_same_kind_is_a_conflict(org, admin_user):
    agent = AgentFactory(organization=org, name="VAT adviser")
    services.budget_create(organization=org, actor=admin_user, metric="cost", period="month", limit=10)
    services.budget_create(
        organization=org, actor=admin_user, agent=agent, metric="cost", period="month", limit=5
    )
    with pytest.raises(ConflictError, match="The organisation already has a monthly cost budget"):
        services.budget_create(organization=org, actor=admin_user, metric="cost", period="month", limit=20)
    with pytest.raises(ConflictError, match="The agent 'VAT adviser' already has a monthly cost budget"):
        services.budget_create(
            organization=org, actor=admin_user, agent=agent, metric="cost", period="month", limit=20
        )


def test_changing_a_budget_replaces_the_configuration_stamp(org, admin_user):
    """Runs read budgets with their cached configuration: a change must reach them."""
    before = type(org).objects.get(pk=org.pk).config_stamp
    services.budget_create(organization=org, actor=admin_user, metric="cost", period="day", limit=1)
    assert type(org).objects.get(pk=org.pk).config_stamp != before


# --- The ledger -------------------------------------------------------------------------------


@pytest.fixture
def priced(org):
    """A provider at 1.00 per 1,000 input tokens and 2.00 per 1,000 output tokens."""
    return ModelProviderFactory(
        organization=org, price_input_per_1k=Decimal("1.00"), price_output_per_1k=Decimal("2.00")
    )


def test_a_call_reserves_its_largest_cost_and_settles_the_real_figure(org, priced):
    """Reserving 300 input + 500 output tokens holds 800 tokens and 1.300000 (0.3 + 1.0); the call's
    real 100 + 50 tokens (0.2) replace the reservation when the run's record is settled."""
    tokens = BudgetFactory(organization=org, metric="tokens", period="day", limit=10_000)
    cost = BudgetFactory(organization=org, metric="cost", period="month", limit="5.00")
    execution = ExecutionFactory(agent=AgentFactory(organization=org), status="running")
    ledger = Ledger([tokens, cost], execution)
    charge = Charge.largest(300, 500, priced)
    assert charge == Charge(800, 1_300_000)
    ledger.reserve(charge)
    assert usage(tokens) == (0, 800) and usage(cost) == (0, 1_300_000)
    assert BudgetReservation.objects.filter(execution=execution).count() == 2
    ledger.spent(Charge.largest(100, 50, priced))
    ledger.reserve(Charge.largest(200, 500, priced))  # the next call: the first is settled in the same UPDATE
    assert usage(tokens) == (150, 700) and usage(cost) == (200_000, 1_200_000)
    ledger.spent(NOTHING)  # a call that failed before answering counts nothing
    ledger.settle()
    assert usage(tokens) == (150, 0) and usage(cost) == (200_000, 0)
    assert not BudgetReservation.objects.filter(execution=execution).exists()


def test_a_budget_that_cannot_cover_the_call_refuses_it_and_holds_nothing(org, priced):
    budget = BudgetFactory(organization=org, metric="cost", period="day", limit="1.00")
    agent_budget = BudgetFactory(organization=org, agent=AgentFactory(organization=org, name="VAT adviser"))
    execution = ExecutionFactory(agent=agent_budget.agent, status="running")
    ledger = Ledger([budget, agent_budget], execution)
    ledger.reserve(Charge.largest(0, 400, priced))  # 0.80
    ledger.spent(Charge.largest(0, 300, priced))  # cost 0.60
    with pytest.raises(BudgetExceeded) as caught:
        ledger.reserve(Charge.largest(0, 250, priced))  # 0.60 + 0.50 > 1.00
    # The refused reservation changed nothing, and the previous call is settled.
    assert usage(budget) == (600_000, 0) and usage(agent_budget) == (600_000, 0)
    assert not BudgetReservation.objects.exists()
    message = caught.value.messages[0]
    assert message.startswith(
        "The organisation's daily cost budget (1.00) cannot cover this run's next model call"
    )
    assert "may cost up to 0.50 (0.60 used)" in message and "an admin can raise the limit" in message
    assert caught.value.resets_at == period_bounds("day")[1]
    assert 0 < caught.value.retry_after(timezone.now()) <= 86_400


def test_an_exact_fit_is_allowed_and_one_unit_more_is_not(org, priced):
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    first = Ledger([budget], ExecutionFactory(agent=AgentFactory(organization=org), status="running"))
    first.reserve(Charge(600, 0))
    second = Ledger([budget], ExecutionFactory(agent=AgentFactory(organization=org), status="running"))
    with pytest.raises(BudgetExceeded, match="600 tokens reserved by runs in progress"):
        second.reserve(Charge(401, 0))
    second.reserve(Charge(400, 0))
    assert usage(budget) == (0, 1000)


def test_a_call_across_midnight_is_settled_in_the_day_it_reserved(org, priced):
    """The day budget's reservation made at 23:59 is settled in that day's row; the next call reserves in
    the new day's, while the month budget keeps one row."""
    day = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    month = BudgetFactory(organization=org, metric="tokens", period="month", limit=5000)
    execution = ExecutionFactory(agent=AgentFactory(organization=org), status="running")
    ledger = Ledger([day, month], execution)
    evening = dt.datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    ledger.reserve(Charge(800, 0), now=evening)
    ledger.spent(Charge(700, 0))
    ledger.reserve(Charge(900, 0), now=evening + dt.timedelta(minutes=2))
    rows = dict(BudgetUsage.objects.filter(budget=day).values_list("period_start", "used"))
    assert rows == {dt.datetime(2026, 12, 4, tzinfo=UTC): 700, dt.datetime(2026, 12, 5, tzinfo=UTC): 0}
    assert BudgetUsage.objects.get(budget=month).used == 700
    assert BudgetUsage.objects.get(budget=month).reserved == 900
    assert (
        BudgetUsage.objects.get(budget=day, period_start=dt.datetime(2026, 12, 5, tzinfo=UTC)).reserved == 900
    )


def test_stale_reservations_are_released_when_a_budget_seems_spent(org):
    """A run whose process died (still ``running`` past any timeout) holds its reservation until a run
    needs the room: then it is released, once, and the new run reserves."""
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    agent = AgentFactory(organization=org)
    dead = ExecutionFactory(agent=agent, status="running")
    Ledger([budget], dead).reserve(Charge(900, 0))
    alive = ExecutionFactory(agent=agent, status="running")
    with pytest.raises(BudgetExceeded):  # the dead run is still young enough to be alive
        Ledger([budget], alive).reserve(Charge(200, 0))
    type(dead).objects.filter(pk=dead.pk).update(
        created_at=timezone.now()
        - dt.timedelta(seconds=agent.timeout_seconds)
        - RUN_GRACE
        - dt.timedelta(seconds=1)
    )
    Ledger([budget], alive).reserve(Charge(200, 0))
    assert usage(budget) == (0, 200)
    assert list(BudgetReservation.objects.values_list("execution_id", flat=True)) == [alive.pk]
    # A late settlement of the released run takes nothing off ``reserved`` a second time.
    late = Ledger([budget], dead)
    late.held = {budget.pk: (period_bounds("day")[0], 900)}
    late.settle()
    assert usage(budget) == (0, 200)
    assert release_stale(budget, period_bounds("day")[0]) == 0


def test_a_finished_runs_leftover_reservation_is_stale(org):
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100)
    finished = ExecutionFactory(agent=AgentFactory(organization=org), status=ExecutionStatus.FAILED)
    BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], reserved=60)
    BudgetReservation.objects.create(
        budget=budget, period_start=period_bounds("day")[0], execution=finished, amount=60
    )
    assert release_stale(budget, period_bounds("day")[0]) == 1
    assert usage(budget) == (0, 0)


def test_precheck_refuses_what_no_budget_could_let_start(org):
    """One query reads every budget's current row; the first budget (months first) without room for the
    smallest call refuses."""
    day = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    month = BudgetFactory(organization=org, metric="tokens", period="month", limit=100_000)
    assert precheck([day, month], Charge(1000, 0)) is None
    BudgetUsage.objects.create(budget=day, period_start=period_bounds("day")[0], used=500)
    refusal = precheck([day, month], Charge(501, 0))
    assert refusal is not None and "daily tokens budget" in refusal.messages[0]
    assert refusal.resets_at == period_bounds("day")[1]
    BudgetUsage.objects.create(budget=month, period_start=period_bounds("month")[0], used=99_999)
    refusal = precheck([day, month], Charge(501, 0))
    assert "monthly tokens budget" in refusal.messages[0] and refusal.resets_at == period_bounds("month")[1]
