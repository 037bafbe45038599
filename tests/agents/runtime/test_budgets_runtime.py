"""Budgets during runs: each provider call reserves its largest possible cost and settles the real
figure; a run its budgets cannot cover ends ``refused`` and the API answers 429 ``budget_exceeded``
with ``Retry-After``; a stream is refused before it starts, or ends ``refused`` between tool rounds.

Providers are the offline engine and a real local OpenAI-compatible server (pytest-httpserver) that
reports the usage each test needs; on PostgreSQL, twenty concurrent requests against a budget that
covers exactly ten runs let exactly ten through."""

# ruff: noqa: F811 (the `remote` fixture is imported, then requested by name)
from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone
from werkzeug import Response

from agents.models import BudgetReservation, BudgetUsage, Execution, period_bounds
from agents.runtime import execute
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import BudgetExceeded
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401 (the fixture)
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    BudgetFactory,
    MembershipFactory,
    ModelProviderFactory,
    OrganizationFactory,
    PersonaFactory,
    UserFactory,
    release_now,
)
from tests.support.api import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_period_clock")]

VAT_QUESTION = "What is the VAT on €1,000 at 19%?"
VAT_ARGS = json.dumps({"net": "1000.00", "rate": "19"})


def url(agent) -> str:
    return f"/api/v1/agents/{agent.pk}/execute/"


def used(budget) -> tuple[int, int]:
    row = BudgetUsage.objects.filter(budget=budget, period_start=period_bounds(budget.period)[0]).first()
    return (row.used, row.reserved) if row else (0, 0)


def parse_sse(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def execute_client(org):
    return client_for(key=APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext)


# --- Settlement ------------------------------------------------------------------------------------


def test_a_completed_run_counts_its_real_usage_in_the_organisation_and_agent_budgets(remote, org):
    """Both budgets that apply count the two calls' real figures (the provider's usage at its prices),
    nothing stays reserved, and the figures equal the execution's."""
    agent, _ = remote(
        completion(tool_calls=[("vat-calculator", VAT_ARGS)]), completion("The VAT is €190.00.")
    )
    org_cost = BudgetFactory(organization=org, metric="cost", period="month", limit="100.00")
    agent_tokens = BudgetFactory(organization=org, agent=agent, metric="tokens", period="day", limit=100_000)
    other_agent = BudgetFactory(
        organization=org, agent=AgentFactory(organization=org), metric="tokens", period="day", limit=1
    )
    execution = execute(agent, VAT_QUESTION, source="api")
    assert execution.status == "completed", execution.error
    assert execution.cost == Decimal("1.600000") and execution.tokens_in + execution.tokens_out == 2400
    assert used(org_cost) == (1_600_000, 0)
    assert used(agent_tokens) == (2400, 0)
    assert used(other_agent) == (0, 0)  # another agent's budget does not apply
    assert not BudgetReservation.objects.exists()


def test_a_provider_that_reports_no_usage_is_charged_its_reservation(remote, org):
    agent, model = remote(completion("Fine.", usage=False))
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution = execute(agent, "Hello?", source="api")
    assert execution.status == "completed" and execution.tokens_in is None
    settled = used(budget)[0]
    assert settled >= 1024  # at least max_tokens: the largest the call could have cost
    assert used(budget)[1] == 0


def test_a_call_that_failed_before_answering_counts_nothing(remote, org):
    agent, _ = remote(Response("upstream down", status=500))
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=100_000)
    execution = execute(agent, "Hello?", source="api")
    assert execution.status == "failed"
    assert used(budget) == (0, 0)


def test_runs_without_budgets_are_not_limited(vat_agent):
    assert execute(vat_agent, VAT_QUESTION, source="api").status == "completed"
    assert not BudgetUsage.objects.exists()


def test_a_daily_budget_starts_afresh_at_midnight_and_a_monthly_one_at_the_month(
    vat_agent, org, admin_client_api
):
    """Runs at 23:00 count in that day and that month; after midnight the day's budget shows nothing
    consumed while the month's keeps counting, until the 1st of the next month."""
    day = BudgetFactory(organization=org, metric="tokens", period="day", limit=10_000_000)
    month = BudgetFactory(organization=org, metric="tokens", period="month", limit=10_000_000)

    def consumed(budget) -> int:
        return int(admin_client_api.get(f"/api/v1/budgets/{budget.pk}/").json()["used"])

    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC), tick=False):
        first = execute(vat_agent, VAT_QUESTION, source="api")
        one_run = first.tokens_in + first.tokens_out
        assert consumed(day) == consumed(month) == one_run > 0
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC), tick=False):
        assert consumed(day) == one_run
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC), tick=False):
        assert consumed(day) == 0 and consumed(month) == 0  # 1 January: a new day and a new month
    with time_machine.travel(dt.datetime(2026, 12, 20, 9, 0, tzinfo=dt.UTC), tick=False):
        assert consumed(day) == 0 and consumed(month) == one_run
    assert BudgetUsage.objects.filter(budget=day).count() == 1


# --- Refusals --------------------------------------------------------------------------------------


def test_a_spent_budget_refuses_the_run_before_it_starts(vat_agent, org, execute_client):
    """A JSON request: 429 ``budget_exceeded`` with the reason and ``Retry-After`` until the period's end;
    the run is recorded ``refused`` with that reason, audited like any finished run, and listed by the
    executions' new status filter."""
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=5000)
    BudgetUsage.objects.create(budget=budget, period_start=period_bounds("day")[0], used=5000)
    response = execute_client.post(url(vat_agent), {"input": VAT_QUESTION}, format="json")
    body = assert_error(response, 429)
    assert body["code"] == "budget_exceeded"
    assert body["message"].startswith("The organisation's daily tokens budget (5,000 tokens) cannot cover")
    assert "5,000 tokens used" in body["message"] and "It resets at" in body["message"]
    seconds = (period_bounds("day")[1] - timezone.now()).total_seconds()
    assert abs(int(response["Retry-After"]) - seconds) <= 5
    execution = Execution.objects.get()
    assert execution.status == "refused" and execution.error == body["message"]
    assert not execution.steps.exists()
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert event.after["status"] == "refused" and event.after["error"] == body["message"]
    listed = execute_client.get("/api/v1/executions/", {"status": "refused"})
    assert [row["id"] for row in listed.json()["results"]] == [execution.pk]


def test_the_agents_budget_refuses_what_the_organisations_allows(vat_agent, org, execute_client):
    BudgetFactory(organization=org, metric="tokens", period="month", limit=10_000_000)
    BudgetFactory(organization=org, agent=vat_agent, metric="tokens", period="day", limit=50)
    body = assert_error(execute_client.post(url(vat_agent), {"input": VAT_QUESTION}, format="json"), 429)
    assert body["message"].startswith("The agent 'VAT adviser''s daily tokens budget (50 tokens)")


def test_a_run_refused_at_its_first_call_answers_429_too(remote, org, execute_client):
    """The question and persona fit (the check before the run), but the call with the retrieved passages
    and the tool definitions does not: refused at the reservation, nothing sent to the provider."""
    agent, model = remote(completion("Never sent."))
    smallest = 1024 + 40  # max_tokens plus about the persona and the question
    BudgetFactory(organization=org, metric="tokens", period="day", limit=smallest + 20)
    response = execute_client.post(url(agent), {"input": "Who accounts for the VAT?"}, format="json")
    body = assert_error(response, 429)
    assert body["code"] == "budget_exceeded" and "next model call, which may cost up to" in body["message"]
    assert int(response["Retry-After"]) >= 1
    assert model.bodies == []
    execution = Execution.objects.get()
    assert execution.status == "refused" and execution.error == body["message"]
    # The steps before the refusal (the knowledge search) are kept with the record.
    assert [s.kind for s in execution.steps.all()] == ["retrieval"]
    assert not BudgetReservation.objects.exists()


def test_execute_raises_with_the_recorded_execution(vat_agent, org):
    BudgetFactory(organization=org, metric="tokens", period="day", limit=10)
    with pytest.raises(BudgetExceeded) as caught:
        execute(vat_agent, VAT_QUESTION, source="api")
    assert caught.value.execution.status == "refused"
    assert Execution.objects.get().pk == caught.value.execution.pk


def test_a_stream_is_refused_before_it_starts(vat_agent, org, execute_client):
    """``?stream=true``: the same 429 JSON (not a stream), with ``Retry-After``."""
    BudgetFactory(organization=org, metric="cost", period="month", limit="0.01")
    BudgetUsage.objects.create(
        budget=vat_agent.organization.budgets.get(), period_start=period_bounds("month")[0], used=10_001
    )
    response = execute_client.post(
        url(vat_agent) + "?stream=true",
        {"input": VAT_QUESTION},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    body = assert_error(response, 429)
    assert body["code"] == "budget_exceeded" and "monthly cost budget (0.01)" in body["message"]
    seconds = (period_bounds("month")[1] - timezone.now()).total_seconds()
    assert abs(int(response["Retry-After"]) - seconds) <= 5
    assert Execution.objects.get().status == "refused"


def _tool_round_replies():
    """Round 1 streams a sentence and a tool call, and reports a large usage (2,000 tokens); round 2
    would answer."""
    first = Response(
        chunk({"role": "assistant", "content": "Let me calculate that. "})
        + chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "vat-calculator", "arguments": VAT_ARGS}}]})
        + chunk(finish="tool_calls")
        + chunk(usage={"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000})
        + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )  # fmt: skip
    second = Response(
        chunk({"role": "assistant", "content": "The VAT is €190.00."})
        + chunk(finish="stop")
        + chunk(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )
    return first, second


def test_a_streamed_run_that_runs_out_between_tool_rounds_ends_refused_in_the_stream(
    remote, org, execute_client
):
    """The first call fits; its real usage leaves too little for the second: the tool ran, the second
    call is not made, what was shown is retracted with the reason, and the last event is the execution,
    ``refused``."""
    agent, model = remote(
        *_tool_round_replies(), agent_fields={"knowledge": False, "tools": ("vat-calculator",)}
    )
    budget = BudgetFactory(organization=org, metric="tokens", period="day", limit=3000)
    response = execute_client.post(
        url(agent) + "?stream=true", {"input": VAT_QUESTION}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    assert response.status_code == 201
    events = parse_sse(b"".join(response.streaming_content))
    names = [name for name, _ in events]
    assert names[-1] == "execution"
    final = events[-1][1]
    assert final["status"] == "refused" and final["output"] == ""
    assert final["error"].startswith("The organisation's daily tokens budget (3,000 tokens) cannot cover")
    assert "2,000 tokens used" in final["error"]
    assert ("delta", {"text": "Let me calculate that. "}) in events
    assert ("retract", {"reason": final["error"], "text": ""}) in events
    assert [s["kind"] for s in final["steps"]] == ["model_call", "tool_call"]
    assert len(model.bodies) == 1
    assert used(budget) == (2000, 0)
    assert Execution.objects.get().status == "refused"


def test_an_agent_with_tools_is_settled_round_by_round(remote, org):
    """Without a stream, the second round's reservation settles the first round's real figure in the
    same statement; the run completes when both fit."""
    agent, _ = remote(
        completion(tool_calls=[("vat-calculator", VAT_ARGS)]), completion("The VAT is €190.00.")
    )
    budget = BudgetFactory(organization=org, agent=agent, metric="cost", period="day", limit="100.00")
    execution = execute(agent, VAT_QUESTION, source="api")
    assert execution.status == "completed"
    assert used(budget) == (1_600_000, 0)


def test_the_console_shows_a_refused_run(vat_agent, org, staff_client):
    """The console's turn says the run was refused by a budget, with the reason."""
    BudgetFactory(organization=org, metric="tokens", period="day", limit=10)
    response = staff_client.post(
        "/admin/console/run/", {"agent": vat_agent.pk, "message": VAT_QUESTION}, follow=True
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Refused by a budget." in html and "daily tokens budget (10 tokens)" in html
    assert "console-turn--refused" in html


def test_the_console_stream_start_refused_says_why(vat_agent, org, staff_client):
    BudgetFactory(organization=org, metric="tokens", period="day", limit=10)
    response = staff_client.post(
        "/admin/console/run/",
        {"agent": vat_agent.pk, "message": VAT_QUESTION},
        HTTP_ACCEPT="text/event-stream",
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 429
    assert "daily tokens budget (10 tokens)" in response.content.decode()


# --- Concurrency ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_runs_against_a_budget_for_ten_let_exactly_ten_through():
    """PostgreSQL: a fixed-price provider (the offline engine, priced 1.00 per 1,000 output tokens, no
    input price, answers cut at ``max_tokens`` = 1 token: every run costs exactly 0.001), a daily cost
    budget of 0.010, twenty requests at once through the API (threads, each its own connection): ten
    complete, ten are refused with 429, and the budget has counted exactly 0.010."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: concurrency is PostgreSQL's to prove")
    org = OrganizationFactory(slug="concurrent-firm")
    user = UserFactory(username="concurrent-editor")
    MembershipFactory(user=user, organization=org, role="editor")
    provider = ModelProviderFactory(
        organization=org, kind="offline", price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("1.00")
    )
    agent = AgentFactory(organization=org, status="active", provider=provider)
    PersonaFactory(agent=agent, is_active=True, max_tokens=1)
    release_now(agent)
    budget = BudgetFactory(organization=org, metric="cost", period="day", limit="0.010")
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            client = client_for(user)
            barrier.wait(timeout=30)
            response = client.post(url(agent), {"input": f"What is the VAT rule number {n}?"}, format="json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [201] * 10 + [429] * 10
    assert Execution.objects.filter(status="completed").count() == 10
    assert Execution.objects.filter(status="refused").count() == 10
    assert all(
        cost == Decimal("0.001")
        for cost in Execution.objects.filter(status="completed").values_list("cost", flat=True)
    )
    assert used(budget) == (10_000, 0)
    assert not BudgetReservation.objects.exists()
