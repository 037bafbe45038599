"""Budgets that recover and answer truthfully (the budgets review's findings): a reservation left by a
run whose process died no longer blocks the budget (the precheck releases it, and so does
``manage.py release_budget_reservations``); a release subtracts what the reservation holds when it
deletes it; runs compare against the limit as it is now, and a deleted budget stops applying; when
only runs in progress are in the way, ``Retry-After`` is short; a call larger than the whole limit says
waiting will not help."""

# ruff: noqa: F811 (the `execute_client` and `remote` fixtures are imported, then requested by name)
from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from werkzeug import Response

from agents.models import RUN_GRACE, Budget, BudgetReservation, BudgetUsage, Execution, period_bounds
from agents.runtime.budgets import Charge, Ledger, precheck, release_stale
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import BudgetExceeded
from tests.agents.runtime.test_budgets_runtime import VAT_QUESTION, execute_client, url, used  # noqa: F401
from tests.agents.runtime.test_openai_provider import completion, remote, run_then_release  # noqa: F401
from tests.factories import AgentFactory, BudgetFactory, ExecutionFactory, ModelProviderFactory
from tests.support.api import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_period_clock")]


def _dead_run(agent, *, minutes_ago: int = 120) -> Execution:
    """A run still ``running`` whose process died ``minutes_ago``."""
    dead = ExecutionFactory(agent=agent, status="running")
    Execution.objects.filter(pk=dead.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return dead


def _hold(budget, execution, amount: int) -> None:
    start = period_bounds(budget.period)[0]
    usage, _ = BudgetUsage.objects.get_or_create(budget=budget, period_start=start)
    BudgetUsage.objects.filter(pk=usage.pk).update(reserved=usage.reserved + amount)
    BudgetReservation.objects.create(budget=budget, period_start=start, execution=execution, amount=amount)


# --- 1. Stale reservations --------------------------------------------------------------------------


def test_a_dead_runs_reservation_no_longer_blocks_the_budget_at_the_precheck(vat_agent, org, execute_client):
    """A process died mid-call two hours ago holding 4,500 of a 5,000-token budget: the next run is not
    refused by the precheck; the dead run's reservation is released and the run completes."""
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=5000)
    dead = _dead_run(vat_agent)
    _hold(budget, dead, 4500)
    response = execute_client.post(url(vat_agent), {"input": VAT_QUESTION}, format="json")
    assert response.status_code == 201, response.content
    assert not BudgetReservation.objects.filter(execution=dead).exists()
    assert used(budget)[1] == 0 and used(budget)[0] > 0


def test_a_live_runs_reservation_still_counts_at_the_precheck(vat_agent, org):
    """The same rule decides: a run started a minute ago (within its agent's time limit) is alive."""
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=5000)
    _hold(budget, _dead_run(vat_agent, minutes_ago=1), 4500)
    assert precheck([budget], Charge(1000, 0)) is not None
    assert BudgetReservation.objects.count() == 1


def test_stale_means_past_the_agents_time_limit_plus_the_grace(org):
    """One rule for "stale" (``models.run_is_live``), the conversations' too: a run of an agent with a
    30 s limit is stale 30 s + ``RUN_GRACE`` after it started, not 20 minutes later."""
    agent = AgentFactory(organization=org, timeout_seconds=30)
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    run = ExecutionFactory(agent=agent, status="running")
    _hold(budget, run, 900)
    start = period_bounds("day")[0]
    now = timezone.now()
    created = Execution.objects.get(pk=run.pk).created_at
    assert release_stale(budget, start, now=created + dt.timedelta(seconds=29) + RUN_GRACE) == 0
    assert release_stale(budget, start, now=max(now, created + dt.timedelta(seconds=91))) == 1


def test_the_management_command_releases_dead_runs_reservations_and_audits_it(vat_agent, org):
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=5000)
    live = ExecutionFactory(agent=vat_agent, status="running")
    _hold(budget, _dead_run(vat_agent), 3000)
    _hold(budget, live, 1000)
    from io import StringIO  # noqa: PLC0415

    out = StringIO()
    call_command("release_budget_reservations", stdout=out)
    assert "Released 1 reservation" in out.getvalue()
    assert list(BudgetReservation.objects.values_list("execution_id", flat=True)) == [live.pk]
    assert used(budget) == (0, 1000)
    event = AuditEvent.objects.get(action="budget.release_reservations")
    assert event.organization_id == org.pk and event.after == {"released": 1}


def test_the_management_command_can_be_limited_to_one_organisation(vat_agent, org, other_org):
    mine = BudgetFactory(organization=org, metric="tokens", period="day", limit=5000)
    theirs_agent = AgentFactory(organization=other_org)
    theirs = BudgetFactory(organization=other_org, metric="tokens", period="day", limit=5000)
    _hold(mine, _dead_run(vat_agent), 100)
    _hold(theirs, _dead_run(theirs_agent), 100)
    call_command("release_budget_reservations", "--org", org.slug, stdout=open("/dev/null", "w"))
    assert used(mine) == (0, 0) and used(theirs) == (0, 100)


# --- 4. A release subtracts what the row holds when it deletes it -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_release_racing_the_runs_next_reservation_subtracts_the_amount_it_deletes(org):
    """PostgreSQL, a real interleaving: the run's next call changes its reservation from 1,000 to 3,000
    in a transaction not yet committed; the release (another connection) reads the row meanwhile,
    then waits on the row to delete it. When the run commits, the release must subtract 3,000 (what it
    deleted), not the 1,000 it had read: nothing stays reserved for the rest of the period."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: the interleaving is PostgreSQL's")
    agent = AgentFactory(organization=org)
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    run = _dead_run(agent)  # its process is alive after all, but looks dead: the release takes it
    ledger = Ledger([budget], run)
    ledger.reserve(Charge(1000, 0))
    ledger.spent(Charge(100, 0))
    start = period_bounds("day")[0]
    reserved, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def next_call():
        try:
            with transaction.atomic():
                ledger.reserve(Charge(3000, 0))
                reserved.set()
                go.wait(30)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            connections.close_all()

    runner = threading.Thread(target=next_call)
    runner.start()
    assert reserved.wait(30)
    released: list[int] = []

    def release():
        try:
            released.append(release_stale(budget, start))
        finally:
            connections.close_all()

    releaser = threading.Thread(target=release)
    releaser.start()
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:  # wait until the release waits on the run's row lock
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE%%'"
            )
            if cursor.fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the release never waited on the run's reservation")
    go.set()
    runner.join(30)
    releaser.join(30)
    assert not errors and released == [1]
    ledger.spent(Charge(200, 0))
    ledger._settle_now()
    assert used(budget) == (300, 0)


# --- 6. Retry-After and messages that say what helps ------------------------------------------------


def test_runs_in_progress_in_the_way_answer_a_short_retry_after(vat_agent, org, execute_client):
    """A monthly budget with room except for what a live run holds: Retry-After is at most until that
    run is stale (its agent's limit plus the grace), not the month's end."""
    budget = BudgetFactory(organization=org, metric="tokens", period="month", limit=3000)
    live = ExecutionFactory(agent=vat_agent, status="running")
    _hold(budget, live, 2000)
    response = execute_client.post(url(vat_agent), {"input": VAT_QUESTION}, format="json")
    body = assert_error(response, 429)
    assert body["code"] == "budget_exceeded"
    most = vat_agent.timeout_seconds + RUN_GRACE.total_seconds() + 5
    assert 1 <= int(response["Retry-After"]) <= most
    assert "Only runs in progress are in the way: try again in a moment" in body["message"]


def test_a_call_larger_than_the_whole_limit_says_waiting_will_not_help(vat_agent, org, execute_client):
    BudgetFactory(organization=org, metric="tokens", period="day", limit=10)
    response = execute_client.post(url(vat_agent), {"input": VAT_QUESTION}, format="json")
    body = assert_error(response, 429)
    assert "more than the whole limit, so waiting for the budget to reset will not help" in body["message"]
    assert "max tokens" in body["message"]


# --- 8. The current limit, and deleted budgets ------------------------------------------------------


def test_a_run_compares_against_the_limit_as_it_is_now(org):
    """A run loaded its budget with a 1,000-token limit; an admin lowers it to 500: the run's next
    reservation of 600 is refused. Raised to 5,000: a run loaded at 500 may reserve 3,000."""
    agent = AgentFactory(organization=org)
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    ledger = Ledger([budget], ExecutionFactory(agent=agent, status="running"))
    Budget.objects.filter(pk=budget.pk).update(limit=500)
    with pytest.raises(BudgetExceeded, match=r"budget \(500 tokens\)"):
        ledger.reserve(Charge(600, 0))
    loaded = Budget.objects.get(pk=budget.pk)
    Budget.objects.filter(pk=budget.pk).update(limit=5000)
    Ledger([loaded], ExecutionFactory(agent=agent, status="running")).reserve(Charge(3000, 0))
    assert used(budget) == (0, 3000)


def test_a_budget_deleted_during_a_run_no_longer_applies(org):
    agent = AgentFactory(organization=org)
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=1000)
    other = BudgetFactory(organization=org, metric="tokens", period="month", limit=100_000)
    run = ExecutionFactory(agent=agent, status="running")
    ledger = Ledger([budget, other], run)
    ledger.reserve(Charge(900, 0))
    Budget.objects.filter(pk=budget.pk).delete()
    ledger.spent(Charge(900, 0))
    ledger.reserve(Charge(900, 0))  # the deleted budget would have refused it
    ledger.spent(Charge(50, 0))
    ledger._settle_now()
    assert used(other) == (950, 0)
    fresh = Ledger([budget], ExecutionFactory(agent=agent, status="running"))
    fresh.reserve(Charge(5000, 0))  # loaded before the delete: no row to create, nothing refused
    assert not BudgetReservation.objects.exists()
    assert precheck([budget], Charge(5000, 0)) is None


# --- 2. What a failed call counts ---------------------------------------------------------------------


def test_a_call_that_timed_out_is_charged_all_it_reserved(remote, org):
    """The provider received the request and worked on it (it may bill it); the client gave up: the
    budget counts the whole reservation, not nothing."""
    done = threading.Event()

    def slow(body):
        done.wait(10)  # released as soon as the run has given up
        return completion("late")

    agent, _ = remote(slow, timeout_seconds=1)
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution, _ = run_then_release(agent, done)
    assert execution.status == "failed" and "timed out" in execution.error
    settled, reserved = used(budget)
    assert reserved == 0 and settled >= 1024  # at least max_tokens: all that was reserved


def test_an_unparseable_answer_is_charged_all_it_reserved(remote, org):
    agent, _ = remote(Response("{not json", content_type="application/json"))
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution = execute_hello(agent)
    assert execution.status == "failed" and "malformed" in execution.error
    assert used(budget)[0] >= 1024 and used(budget)[1] == 0


def test_a_refused_connection_counts_nothing(org, make_agent, settings):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings.PROVIDER_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    provider = ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1
    )
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution = execute_hello(make_agent(provider=provider, guards=None))
    assert execution.status == "failed" and "unreachable" in execution.error
    assert used(budget) == (0, 0)


def test_a_call_the_outbound_guard_refused_counts_nothing(remote, org, settings):
    agent, model = remote(completion("never"))
    settings.PROVIDER_ALLOWED_HOSTS = ["provider.example.com"]
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution = execute_hello(agent)
    assert execution.status == "failed" and "outbound policy" in execution.error
    assert used(budget) == (0, 0) and model.bodies == []


def execute_hello(agent):
    from agents.runtime import execute  # noqa: PLC0415

    return execute(agent, "Hello?", source="api")


# --- 9. One calendar for every request ------------------------------------------------------------


def test_periods_are_in_the_sites_time_zone_whatever_the_request_activated(settings):
    """A request that activated another time zone (a user's) must not move a budget's day: periods are
    calendar days and months in ``settings.TIME_ZONE``."""
    settings.TIME_ZONE = "Europe/Berlin"
    now = dt.datetime(2026, 12, 5, 23, 30, tzinfo=dt.UTC)  # already 6 December in Berlin
    with timezone.override("America/New_York"):  # still 5 December there
        start, end = period_bounds("day", now)
    assert start == dt.datetime(2026, 12, 6, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert end - start == dt.timedelta(days=1)
