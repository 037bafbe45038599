"""Dashboard, executions list and execution trace; query counts on the heavy pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.activation import activation_request_create
from agents.models import Execution
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    FeedbackFactory,
    MembershipFactory,
    PersonaFactory,
    UserFactory,
    release_now,
)

# The page reads "today" and "this month" after the test made its runs (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("months_last_second_clock")]


def make_executions(org, count, *, agents=3):
    agent_list = [AgentFactory(organization=org, status="active") for _ in range(agents)]
    user = UserFactory(username=f"runner-{org.slug}")
    rows = []
    for i in range(count):
        agent = agent_list[i % agents]
        status = ["completed", "completed", "failed", "blocked"][i % 4]
        rows.append(
            Execution(
                organization=org,
                agent=agent,
                input=f"Question {i}",
                output="Answer",
                status=status,
                source=["api", "console"][i % 2],
                tokens_in=100 + i,
                tokens_out=20,
                cost=Decimal("0.001"),
                latency_ms=10 * (i + 1),
                actor_user=user,
                error="provider timed out after 30 s" if status == "failed" else "",
            )
        )
    Execution.objects.bulk_create(rows)
    return agent_list


# --- Dashboard --------------------------------------------------------------------------------


def test_dashboard_figures(owner_client, org, other_org):
    """Priya's dashboard: agents by status and type, runs per day, p95 latency, cost, blocks, failures."""
    agents = make_executions(org, 20)
    AgentFactory(organization=org, status="draft", type="audit")
    make_executions(other_org, 7)
    blocked = Execution.objects.filter(organization=org, status="blocked").first()
    ExecutionStepFactory(execution=blocked, kind="guardrail", name="Prompt injection", status="blocked")
    response = owner_client.get("/admin/")
    ctx = response.context
    assert response.status_code == 200
    assert ctx["runs"] == 20 and ctx["failed"] == 5 and ctx["blocked"] == 5
    assert ctx["p95_latency_ms"] == pytest.approx(190.5)  # percentile_cont of 10, 20, … 200 ms
    assert ctx["tokens_in"] == sum(100 + i for i in range(20)) and ctx["cost"] == Decimal("0.020")
    assert ctx["dropped_passages"] == 0 and ctx["blocked_by"][0]["name"] == "Prompt injection"
    assert ctx["agent_total"] == 4
    runs_chart = ctx["dashboard_charts"][0]
    assert sum(bar["height"] > 0 for bar in runs_chart.bars) == 3  # today: one bar per agent, stacked
    assert len(ctx["recent_failures"]) == 8
    html = response.content.decode()
    assert "<svg" in html and "pg-chart-bar" in html and "provider timed out after 30 s" in html
    assert agents[0].name in html or "Active" in html


def _dropping_run(agent, titles):
    """A completed run whose retrieval guardrail dropped one passage per title, as the runtime records it."""
    execution = ExecutionFactory(agent=agent, status="completed")
    ExecutionStepFactory(
        execution=execution,
        ordinal=1,
        kind="retrieval",
        name="Knowledge search",
        status="dropped",
        output={
            "passages": [],
            "dropped": [{"chunk_id": i, "document_title": t} for i, t in enumerate(titles)],
        },
    )
    ExecutionStepFactory(
        execution=execution,
        ordinal=2,
        kind="guardrail",
        name="Prompt injection (retrieval)",
        status="dropped",
        input={"stage": "retrieval", "action": "block"},
        output={"triggered": True, "passages": [{"document": t} for t in titles]},
    )
    return execution


def test_dashboard_counts_blocked_runs_and_dropped_passages_apart(owner_client, org, other_org):
    """Issue 15 finding 4: five passages dropped inside completed runs and one blocked run are "1 blocked
    run" and "5 dropped passages", not "6 guardrail blocks"."""
    agent = AgentFactory(organization=org, status="active")
    _dropping_run(agent, ["Client upload", "Memo"])
    _dropping_run(agent, ["Memo", "Note", "Letter"])
    blocked = ExecutionFactory(agent=agent, status="blocked")
    ExecutionStepFactory(
        execution=blocked,
        kind="guardrail",
        name="Prompt injection",
        status="blocked",
        input={"stage": "input"},
    )
    _dropping_run(AgentFactory(organization=other_org), ["Elsewhere"] * 4)  # another organisation's
    old = _dropping_run(agent, ["Last month"])
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=40))
    response = owner_client.get("/admin/")
    ctx = response.context
    assert ctx["blocked"] == 1 and ctx["dropped_passages"] == 5
    assert ctx["blocked_by"] == [{"name": "Prompt injection", "n": 1}]
    html = response.content.decode()
    assert "Runs blocked by a guardrail" in html and "Passages dropped (runs went on)" in html
    assert "Guardrail blocks" not in html


def test_dashboard_counts_refused_runs_apart_and_never_as_healthy(owner_client, org):
    """A run a budget refused did not answer: its own card, red in the chart, listed among the recent
    failures with its reason."""
    agent = AgentFactory(organization=org, name="VAT adviser")
    ExecutionFactory(agent=agent, status="completed")
    ExecutionFactory(agent=agent, status="failed", error="provider timed out after 30 s")
    ExecutionFactory(
        agent=agent,
        status="refused",
        error="The organisation's daily cost budget (1.00) cannot cover this run",
    )
    response = owner_client.get("/admin/")
    ctx = response.context
    assert ctx["refused"] == 1 and ctx["failed"] == 1 and ctx["runs"] == 3
    unanswered = ctx["dashboard_charts"][3]
    assert [row["values"] for row in unanswered.table][-1] == ["0", "1", "1"]  # blocked, failed, refused
    assert {ex.status for ex in ctx["recent_failures"]} == {"failed", "refused"}
    html = response.content.decode()
    assert "Runs refused by a budget" in html and "daily cost budget (1.00) cannot cover" in html


def test_dashboard_chart_spreads_days(owner_client, org):
    agent = AgentFactory(organization=org)
    old = ExecutionFactory(agent=agent)
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    ExecutionFactory(agent=agent, status="failed")
    charts = owner_client.get("/admin/?range=7d").context["dashboard_charts"]
    assert [row["values"] for row in charts[0].table][-4:] == [["1"], ["0"], ["0"], ["1"]]
    assert [row["values"][1] for row in charts[3].table][-4:] == ["0", "0", "0", "1"]  # failed


def test_dashboard_empty_states(owner_client, org):
    html = owner_client.get("/admin/").content.decode()
    assert "No runs from" in html and "Create your first agent" in html


def _requester(org):
    user = UserFactory(username=f"requester-{org.slug}")
    MembershipFactory(user=user, organization=org, role="editor")
    return user


def test_dashboard_query_count_does_not_grow(owner_client, org, django_assert_max_num_queries):
    agents = make_executions(org, 200, agents=10)
    for _ in range(20):
        _dropping_run(agents[0], ["Memo", "Note"])
    # Pending activation requests of several agents: their panel is one query whatever their number.
    requester = _requester(org)
    for agent in agents[:6]:
        PersonaFactory(agent=agent, is_active=True)
        activation_request_create(agent=agent, release=release_now(agent, activate=False), actor=requester)
    # 16 for the page and the agents' panel, whatever the number of runs (its cards 1, agents 1,
    # per day 2, breakdowns 4, passages, guardrails and failures 3); tenancy's panels add a
    # constant 4 for an owner (locked sign-ins: the members, their locks; API keys near expiry: the
    # keys, their count), the agents' budgets panel 1 (every budget with its period's consumption),
    # the activations awaiting approval 1.
    with django_assert_max_num_queries(22):
        assert owner_client.get("/admin/").status_code == 200


# --- Registry ---------------------------------------------------------------------------------


def test_registry_query_count_with_many_agents(owner_client, org, owner, django_assert_max_num_queries):
    for i in range(60):
        agent = AgentFactory(organization=org, owner=owner, status=["draft", "active"][i % 2])
        if i % 10 == 0:
            ExecutionFactory(agent=agent)
    with django_assert_max_num_queries(12):
        response = owner_client.get("/admin/agents/agent/")
    assert response.status_code == 200 and response.context["cl"].result_count == 60


# --- Executions -------------------------------------------------------------------------------


def test_executions_filters(owner_client, org):
    agents = make_executions(org, 12)
    url = "/admin/agents/execution/"
    assert owner_client.get(url).context["cl"].result_count == 12
    assert owner_client.get(url, {"status__exact": "failed"}).context["cl"].result_count == 3
    assert owner_client.get(url, {"source__exact": "console"}).context["cl"].result_count == 6
    assert owner_client.get(url, {"agent": agents[0].pk}).context["cl"].result_count == 4
    today = timezone.localdate()
    response = owner_client.get(
        url, {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day}
    )
    assert response.context["cl"].result_count == 12
    html = owner_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "pg-badge-failed" in html


def test_executions_list_query_count(owner_client, org, django_assert_max_num_queries):
    make_executions(org, 120, agents=6)
    with django_assert_max_num_queries(12):
        response = owner_client.get("/admin/agents/execution/")
    assert response.status_code == 200


def test_execution_trace_shows_the_timeline(owner_client, world):
    html = owner_client.get(world.pages()["execution"]).content.decode()
    assert "Timeline (2 steps" in html and "Model call" in html and "The VAT is €190.00." in html
    assert "Thumbs down" in html and "pg-icon-thumb-down" in html and "reverse charge" in html
    assert html.index("1. Guardrail") < html.index("2. Model call")


def test_execution_detail_query_count(owner_client, org, django_assert_max_num_queries):
    agent = AgentFactory(organization=org)
    persona = PersonaFactory(agent=agent, is_active=True)
    execution = ExecutionFactory(agent=agent, persona=persona)
    for i in range(40):
        ExecutionStepFactory(
            execution=execution, ordinal=i + 1, kind=["guardrail", "retrieval", "tool_call"][i % 3]
        )
    for _ in range(5):
        FeedbackFactory(execution=execution, rating=1)
    with django_assert_max_num_queries(10):
        response = owner_client.get(f"/admin/agents/execution/{execution.pk}/change/")
    assert response.status_code == 200 and response.content.decode().count("pg-step-head") == 40


def test_executions_are_read_only(owner_client, world):
    assert owner_client.get("/admin/agents/execution/add/").status_code == 403
    response = owner_client.post(world.pages()["execution"].replace("change", "delete"), {"post": "yes"})
    assert response.status_code == 403


def test_agent_detail_query_count(owner_client, org, django_assert_max_num_queries):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    for _ in range(30):
        ExecutionFactory(agent=agent)
    for _ in range(3):
        release_now(agent, activate=False)
        agent.personas.update(system_prompt=f"Version {_}")
    activation_request_create(agent=agent, actor=_requester(org))
    # The activation section adds 2 (the releases to choose from, the pending request).
    with django_assert_max_num_queries(20):
        assert owner_client.get(f"/admin/agents/agent/{agent.pk}/overview/").status_code == 200


def test_feedback_from_the_execution_page_proposes_a_learning_example(staff_client, world):
    url = world.pages()["execution"]
    response = staff_client.post(
        url, {"rating": "-1", "comment": "Too vague", "correction": "Say who accounts for the VAT."}
    )
    assert response.status_code == 302
    feedback = world.execution.feedback.order_by("-id").first()
    assert feedback.comment == "Too vague" and feedback.user is not None
    assert world.agent.learning_examples.filter(
        output="Say who accounts for the VAT.", status="proposed"
    ).exists()


def test_feedback_form_validation(staff_client, viewer_admin_client, world):
    url = world.pages()["execution"]
    response = staff_client.post(url, {"rating": "5"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    response = staff_client.post(url, {"rating": "1", "correction": "Not with a thumbs up"})
    assert response.status_code == 400 and "A correction goes with" in response.content.decode()
    # Viewers give feedback, as through the API (``execution.feedback``).
    assert "Give feedback" in viewer_admin_client.get(url).content.decode()
    assert viewer_admin_client.post(url, {"rating": "1"}).status_code == 302
