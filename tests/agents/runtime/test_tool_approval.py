"""Approval of tool calls: a call of a tool that requires approval pauses the run
(``awaiting_approval``); a person with the editor role approves it (its arguments edited or not) or
refuses it, through the API, the approval inbox or the console; the run resumes from its stored state
(the worker's task, run here by the immediate backend at commit); unanswered, it expires.

The model is a real local OpenAI-compatible server and the tool a real local HTTP peer on the same
``pytest-httpserver`` (tests/agents/runtime/test_openai_provider.py's ``remote``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from werkzeug import Response

from agents import services
from agents.models import (
    AgentTool,
    BudgetReservation,
    BudgetUsage,
    Conversation,
    Execution,
    ToolApproval,
    run_is_live,
    running_since,
)
from agents.runtime import ConversationBusy, execute
from agents.runtime.conversations import begin_turn
from agents.runtime.pipeline import resume
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_verify_chain
from tests.agents.runtime.conftest import builtin, guardrail
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401 (the fixture)
from tests.conftest import client_for
from tests.factories import (
    APIKeyFactory,
    BudgetFactory,
    MembershipFactory,
    ToolApprovalFactory,
    UserFactory,
    release_now,
)
from tests.support.admin import login
from tests.support.api import assert_error, results
from tools.models import Tool
from tools.services import tool_create

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
QUESTION = "Pay the supplier's invoice of 100.00 EUR."
SCHEMA = {
    "type": "object",
    "properties": {
        "iban": {"type": "string", "minLength": 5},
        "amount": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
    },
    "required": ["iban", "amount"],
    "additionalProperties": False,
}
CALL = {"iban": "FR7630006000011234567890189", "amount": "100.00"}


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    """The decision's task runs at once when its transaction commits (the worker's own test runs a
    real ``db_worker``: test_tool_approval_worker.py)."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def payments(httpserver, settings, org, editor):
    """A real local payments peer and its HTTP tool, created as staff create tools (so the one rule
    decides that it requires approval). Returns (tool, the JSON bodies it received)."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    received: list[dict] = []

    def handler(request):
        received.append(json.loads(request.get_data(as_text=True) or "{}"))
        return Response(
            json.dumps({"status": "booked", "reference": "PAY-1"}), content_type="application/json"
        )

    httpserver.expect_request("/pay", method="POST").respond_with_handler(handler)
    tool = tool_create(
        organization=org,
        actor=editor,
        name="Payments",
        slug="payments",
        url_template=httpserver.url_for("/pay"),
        http_method="POST",
        input_schema=SCHEMA,
    )
    return tool, received


def _echo(body):
    return completion("The tool says: " + body["messages"][-1]["content"])


@pytest.fixture
def paying_agent(remote, payments):  # noqa: F811
    """(agent, fake model, tool, received): the model calls the payments tool, then repeats its result."""
    agent, model = remote(completion(tool_calls=[("payments", json.dumps(CALL))]), _echo, guards=None)
    tool, received = payments
    AgentTool.objects.create(agent=agent, tool=tool, order=9)
    release_now(agent)
    return agent, model, tool, received


def _pause(agent, user):
    response = client_for(user).post(
        f"/api/v1/agents/{agent.pk}/execute/", {"input": QUESTION}, format="json"
    )
    assert response.status_code == 202, response.content[:500]
    return response.json()


# --- The rule and the settings -----------------------------------------------------------------------


def test_new_http_tools_require_approval_unless_read_only(org, editor):
    common = {"organization": org, "actor": editor, "url_template": "https://tools.example.com/x"}
    assert tool_create(name="Book", **common).requires_approval is True
    assert tool_create(name="Look up", read_only=True, **common).requires_approval is False
    assert tool_create(name="Chosen", requires_approval=False, **common).requires_approval is False
    # Built-in tools never do by default.
    assert not Tool.objects.filter(organization__isnull=True, requires_approval=True).exists()


def test_the_api_creates_tools_by_the_same_rule(editor_client):
    made = editor_client.post(
        "/api/v1/tools/", {"name": "Book", "url_template": "https://tools.example.com/x"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert made.json()["requires_approval"] is True and made.json()["read_only"] is False
    looked = editor_client.post(
        "/api/v1/tools/",
        {"name": "Look", "url_template": "https://tools.example.com/y", "read_only": True},
        format="json",
    )
    assert looked.json()["requires_approval"] is False


def test_an_assignment_overrides_the_tool(paying_agent, editor, make_agent):
    """The assignment's ``False`` lets the payments tool run without a person; its ``True`` makes a
    built-in tool wait."""
    agent, _, tool, received = paying_agent
    AgentTool.objects.filter(agent=agent, tool=tool).update(requires_approval=False)
    release_now(agent)
    execution = execute(agent, QUESTION, actor=editor, source="api")
    assert execution.status == "completed", execution.error
    assert received == [CALL]

    offline = make_agent(name="Offline VAT", guards=None)
    AgentTool.objects.filter(agent=offline, tool=builtin("vat-calculator")).update(requires_approval=True)
    release_now(offline)
    paused = execute(offline, "What is the VAT on €1,000 at 19%?", actor=editor, source="api")
    assert paused.status == "awaiting_approval"
    assert ToolApproval.objects.get(execution=paused).tool_name == "VAT calculator"


# --- The pause ------------------------------------------------------------------------------------------


def test_execute_answers_202_and_the_call_waits(paying_agent, editor):
    agent, model, tool, received = paying_agent
    body = _pause(agent, editor)
    assert body["status"] == "awaiting_approval" and body["finished_at"] is None
    approval = ToolApproval.objects.get(execution_id=body["id"])
    assert body["tool_approval"] == {
        "id": approval.pk,
        "tool": tool.pk,
        "tool_name": "Payments",
        "arguments": CALL,
        "expires_at": approval.expires_at.isoformat(),
    }
    assert received == [] and len(model.bodies) == 1  # the tool was not called, nor the model again
    assert [s["kind"] for s in body["steps"]][-2:] == ["model_call", "approval"]
    assert body["steps"][-1]["name"] == "Approval requested: Payments"
    assert approval.status == "pending" and approval.arguments == CALL
    assert approval.expires_at - approval.created_at == pytest.approx(
        dt.timedelta(hours=24), abs=dt.timedelta(seconds=5)
    )
    event = AuditEvent.objects.get(action="tool_approval.request")
    assert event.after["execution"] == body["id"] and event.after["arguments"]["amount"] == "100.00"
    # The detail shows the same request.
    detail = client_for(editor).get(f"/api/v1/executions/{body['id']}/").json()
    assert detail["status"] == "awaiting_approval" and detail["tool_approval"]["id"] == approval.pk


def _events(text: str) -> list[tuple[str, dict]]:
    blocks = [b for b in text.strip().split("\n\n") if b]
    return [
        (b.split("\n")[0].removeprefix("event: "), json.loads(b.split("\n", 1)[1].removeprefix("data: ")))
        for b in blocks
    ]


def test_a_stream_shows_the_pause_as_an_event_then_ends(remote, payments, editor):  # noqa: F811
    """The model streams a sentence, then the call: the client reads the sentence, the ``approval``
    event and the paused execution, and the stream ends. The resumed run keeps the sentence."""
    streamed = Response(
        chunk({"role": "assistant", "content": "Paying the invoice now. "})
        + chunk({"tool_calls": [{"index": 0, "id": "call_s", "type": "function", "function": {"name": "payments", "arguments": json.dumps(CALL)}}]})
        + chunk(finish="tool_calls")
        + chunk(usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )  # fmt: skip
    agent, _model = remote(streamed, _echo, guards=None)
    tool, received = payments
    AgentTool.objects.create(agent=agent, tool=tool, order=9)
    release_now(agent)
    response = client_for(editor).post(
        f"/api/v1/agents/{agent.pk}/execute/?stream=true", {"input": QUESTION}, format="json"
    )
    events = _events(b"".join(response.streaming_content).decode())
    names = [name for name, _ in events]
    assert names[-2:] == ["approval", "execution"] and "delta" in names
    data = dict(events)
    assert data["delta"]["text"].startswith("Paying the invoice now.")
    assert data["approval"]["tool_name"] == "Payments" and data["approval"]["arguments"] == CALL
    assert data["approval"]["status"] == "pending"
    assert data["execution"]["status"] == "awaiting_approval"
    assert data["execution"]["tool_approval"]["id"] == data["approval"]["id"]
    assert received == []
    approval = ToolApproval.objects.get(pk=data["approval"]["id"])
    services.tool_approval_approve(approval=approval, actor=editor)
    finished = resume(approval.pk)
    assert finished.status == "completed", finished.error
    assert finished.output.startswith("Paying the invoice now.")
    assert "PAY-1" in finished.output and received == [CALL]


def test_the_arguments_are_stored_as_the_model_wrote_them_never_the_values(remote, payments, editor):  # noqa: F811
    """With PII redaction the model writes ``[IBAN_1]``: the request shows that, the stored state is
    encrypted, and the tool (outside the firm) gets the placeholder after approval."""

    def call(body):
        placeholder = "[IBAN_1]" if "[IBAN_1]" in json.dumps(body["messages"]) else IBAN
        return completion(tool_calls=[("payments", json.dumps({"iban": placeholder, "amount": "100.00"}))])

    agent, model = remote(call, _echo, guards=None)
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    tool, received = payments
    AgentTool.objects.create(agent=agent, tool=tool, order=9)
    release_now(agent)
    execution = execute(agent, f"Pay 100.00 EUR to {IBAN}.", actor=editor, source="api")
    assert execution.status == "awaiting_approval"
    approval = ToolApproval.objects.get(execution=execution)
    assert approval.arguments == {"iban": "[IBAN_1]", "amount": "100.00"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM agents_toolapproval WHERE id = %s", [approval.pk])
        raw = cursor.fetchone()[0]
    assert IBAN not in raw and "[IBAN_1]" not in raw  # encrypted
    assert IBAN not in json.dumps(AuditEvent.objects.get(action="tool_approval.request").after)
    services.tool_approval_approve(approval=approval, actor=editor)
    assert resume(approval.pk) is not None
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert received == [{"iban": "[IBAN_1]", "amount": "100.00"}]
    assert IBAN not in json.dumps(model.bodies)


# --- Deciding through the API ------------------------------------------------------------------------


def test_approve_resumes_the_run_from_its_state(paying_agent, editor, django_capture_on_commit_callbacks):
    agent, model, _, received = paying_agent
    body = _pause(agent, editor)
    approval = ToolApproval.objects.get(execution_id=body["id"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(
            f"/api/v1/tool-approvals/{approval.pk}/approve/", {}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved" and response.json()["decided_by"] == editor.pk
    execution = Execution.objects.get(pk=body["id"])
    assert execution.status == "completed", execution.error
    assert execution.output.startswith("The tool says:") and "PAY-1" in execution.output
    assert received == [CALL]
    # The model's second request continues the first: the same messages, the call and its result.
    assert model.bodies[1]["messages"][: len(model.bodies[0]["messages"])] == model.bodies[0]["messages"]
    assert model.bodies[1]["messages"][-1]["role"] == "tool"
    steps = list(execution.steps.order_by("ordinal"))
    assert [s.ordinal for s in steps] == list(range(1, len(steps) + 1))
    decision = next(s for s in steps if s.name == "Approved: Payments")
    assert (
        decision.output["decided_by"] == editor.get_username() and decision.output["decision"] == "approved"
    )
    assert execution.resumed_at is not None and execution.finished_at is not None
    assert (execution.tokens_in, execution.tokens_out) == (2000, 400)  # both calls counted
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["tool_approval.request", "tool_approval.approve", "agent.execute"]
    assert AuditEvent.objects.get(action="tool_approval.approve").actor_user == editor
    assert audit_verify_chain(agent.organization) == []
    assert ToolApproval.objects.get(pk=approval.pk).state == ""  # cleared once resumed


def test_approve_with_edited_arguments(paying_agent, editor, django_capture_on_commit_callbacks):
    agent, _, _, received = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    edited = {"iban": CALL["iban"], "amount": "50.00"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(
            f"/api/v1/tool-approvals/{approval.pk}/approve/", {"arguments": edited}, format="json"
        )
    assert response.status_code == 200 and response.json()["edited_arguments"] == edited
    assert received == [edited]
    execution = approval.execution
    decision = execution.steps.get(name="Approved with edited arguments: Payments")
    assert decision.output["arguments"] == CALL and decision.output["edited_arguments"] == edited
    call = execution.steps.get(kind="tool_call")
    assert call.input["arguments"] == edited and call.input["edited_by_approver"] is True
    # The audit log is read in lists: identifiers masked there (agents.privacy).
    event = AuditEvent.objects.get(action="tool_approval.approve")
    assert event.after["edited_arguments"] == {"iban": "FR76 •••• 0189", "amount": "50.00"}
    assert event.before["edited_arguments"] is None and event.actor_user == editor


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ({"iban": CALL["iban"], "amount": "fifty"}, "amount"),
        ({"iban": CALL["iban"]}, "'amount' is a required property"),
        ({"iban": CALL["iban"], "amount": "1.00", "extra": 1}, "Additional properties"),
        (["not", "an", "object"], "object"),
        ("text", "object"),
    ],
)
def test_edited_arguments_that_do_not_match_the_schema_are_a_400(paying_agent, editor, arguments, problem):
    agent, _, _, received = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    response = client_for(editor).post(
        f"/api/v1/tool-approvals/{approval.pk}/approve/", {"arguments": arguments}, format="json"
    )
    body = assert_error(response, 400, fields=["arguments"])
    assert problem in " ".join(body["errors"]["arguments"])
    approval.refresh_from_db()
    assert approval.status == "pending" and received == []


def test_refuse_tells_the_model_and_the_run_goes_on(paying_agent, editor, django_capture_on_commit_callbacks):
    agent, model, _, received = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(
            f"/api/v1/tool-approvals/{approval.pk}/refuse/",
            {"reason": "Wrong supplier account."},
            format="json",
        )
    assert response.status_code == 200 and response.json()["status"] == "refused"
    assert received == []
    assert (
        model.bodies[1]["messages"][-1]["content"] == "the person refused this call: Wrong supplier account."
    )
    execution = approval.execution
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert execution.output == "The tool says: the person refused this call: Wrong supplier account."
    decision = execution.steps.get(kind="approval", name="Refused: Payments")
    assert decision.status == "warned" and decision.output["reason"] == "Wrong supplier account."
    assert execution.steps.get(kind="tool_call").status == "failed"
    assert AuditEvent.objects.get(action="tool_approval.refuse").after["reason"] == "Wrong supplier account."


@pytest.mark.parametrize("data", [{}, {"reason": "   "}, {"reason": 5}, {"reason": "x" * 2001}])
def test_a_refusal_needs_a_reason(paying_agent, editor, data):
    agent, _, _, _ = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    response = client_for(editor).post(f"/api/v1/tool-approvals/{approval.pk}/refuse/", data, format="json")
    assert_error(response, 400, fields=["reason"])


def test_a_second_decision_is_a_409(paying_agent, editor):
    agent, _, _, _ = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    url = f"/api/v1/tool-approvals/{approval.pk}/"
    assert client_for(editor).post(url + "approve/", {}, format="json").status_code == 200
    assert_error(client_for(editor).post(url + "refuse/", {"reason": "Too late"}, format="json"), 409)


def test_unknown_fields_are_refused(paying_agent, editor):
    agent, _, _, _ = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    response = client_for(editor).post(
        f"/api/v1/tool-approvals/{approval.pk}/approve/", {"argumnts": {}}, format="json"
    )
    assert_error(response, 400)


# --- Who may ---------------------------------------------------------------------------------------------


def test_permissions(org, other_org, editor, viewer):
    approval = ToolApprovalFactory(execution__agent__organization=org)
    theirs = ToolApprovalFactory(execution__agent__organization=other_org)
    url = f"/api/v1/tool-approvals/{approval.pk}/"
    # Anonymous.
    assert_error(client_for().get("/api/v1/tool-approvals/"), 401)
    assert_error(client_for().post(url + "approve/", {}, format="json"), 401)
    # A viewer reads, never decides.
    assert [row["id"] for row in results(client_for(viewer).get("/api/v1/tool-approvals/"))] == [approval.pk]
    assert_error(client_for(viewer).post(url + "approve/", {}, format="json"), 403)
    assert_error(client_for(viewer).post(url + "refuse/", {"reason": "no"}, format="json"), 403)
    # An API key, whatever its scopes, is refused: a person decides.
    key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    assert client_for(key=key.plaintext).get(url).status_code == 200
    body = assert_error(client_for(key=key.plaintext).post(url + "approve/", {}, format="json"), 403)
    assert body["code"] == "session_required"
    # Another organisation's request is not there.
    assert_error(client_for(editor).get(f"/api/v1/tool-approvals/{theirs.pk}/"), 404)
    assert_error(
        client_for(editor).post(f"/api/v1/tool-approvals/{theirs.pk}/approve/", {}, format="json"), 404
    )
    approval.refresh_from_db()
    theirs.refresh_from_db()
    assert approval.status == theirs.status == "pending"
    # The service refuses a key too, whatever door it is called from.
    with pytest.raises(Exception, match="never by an API key"):
        services.tool_approval_approve(approval=approval, actor=key)


def test_the_list_masks_identifiers_the_detail_shows_them_to_editors(org, editor, viewer):
    approval = ToolApprovalFactory(execution__agent__organization=org, arguments={"q": f"IBAN {IBAN}"})
    listed = results(client_for(editor).get("/api/v1/tool-approvals/?status=pending"))[0]
    assert IBAN not in json.dumps(listed) and "DE89" in listed["arguments"]["q"]
    assert client_for(editor).get(f"/api/v1/tool-approvals/{approval.pk}/").json()["arguments"] == {
        "q": f"IBAN {IBAN}"
    }
    assert IBAN not in json.dumps(client_for(viewer).get(f"/api/v1/tool-approvals/{approval.pk}/").json())


def test_list_query_count_does_not_grow(org, editor, django_assert_max_num_queries):
    client = client_for(editor)
    ToolApprovalFactory.create_batch(2, execution__agent__organization=org)
    with django_assert_max_num_queries(8) as few:
        assert len(results(client.get("/api/v1/tool-approvals/"))) == 2
    ToolApprovalFactory.create_batch(8, execution__agent__organization=org)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(results(client.get("/api/v1/tool-approvals/"))) == 10


# --- Expiry ------------------------------------------------------------------------------------------------


def test_unanswered_calls_expire_and_their_runs_fail(paying_agent, editor, settings):
    agent, _, _, received = paying_agent
    settings.TOOL_APPROVAL_HOURS = 2
    execution_id = _pause(agent, editor)["id"]
    approval = ToolApproval.objects.get(execution_id=execution_id)
    assert services.tool_approvals_expire() == 0  # not yet
    later = timezone.now() + dt.timedelta(hours=2, seconds=1)
    assert services.tool_approvals_expire(now=later) == 1
    approval.refresh_from_db()
    execution = Execution.objects.get(pk=execution_id)
    assert approval.status == "expired" and approval.state == ""
    assert execution.status == "failed" and execution.finished_at is not None
    assert execution.error == (
        "the call of the tool 'Payments' waited for approval for more than 2 h "
        "(PRISMA_GLOW_TOOL_APPROVAL_HOURS) and expired unanswered"
    )
    assert execution.steps.order_by("-ordinal").first().name == "Approval expired: Payments"
    assert AuditEvent.objects.filter(action="tool_approval.expire", actor_user=None).count() == 1
    assert AuditEvent.objects.filter(action="agent.execute", after__status="failed").count() == 1
    assert received == []


def test_a_late_decision_expires_the_call(paying_agent, editor):
    agent, _, _, received = paying_agent
    execution_id = _pause(agent, editor)["id"]
    approval = ToolApproval.objects.get(execution_id=execution_id)
    ToolApproval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    body = assert_error(
        client_for(editor).post(f"/api/v1/tool-approvals/{approval.pk}/approve/", {}, format="json"), 409
    )
    assert "expired" in body["message"]
    assert Execution.objects.get(pk=execution_id).status == "failed" and received == []


def test_the_command_expires_them(org, capsys):
    from django.core.management import call_command

    ToolApprovalFactory(
        execution__agent__organization=org, expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    call_command("expire_tool_approvals")
    assert "Expired 1 tool call(s)" in capsys.readouterr().out
    assert ToolApproval.objects.get().status == "expired"


# --- Budgets, conversations, time ------------------------------------------------------------------------


@pytest.mark.usefixtures("mid_period_clock")  # a month's budget, filled and read back around the run
def test_a_paused_run_holds_no_budget_and_reserves_again_on_resume(paying_agent, editor, org):
    agent, _, _, _ = paying_agent
    BudgetFactory(organization=org, metric="tokens", period="month", limit="100000")
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    usage = BudgetUsage.objects.get()
    assert usage.reserved == 0 and usage.used == 1200  # the first call settled, nothing held
    assert not BudgetReservation.objects.exists()
    services.tool_approval_approve(approval=approval, actor=editor)
    resume(approval.pk)
    usage.refresh_from_db()
    assert usage.reserved == 0 and usage.used == 2400
    assert not BudgetReservation.objects.exists()


def test_a_paused_turn_keeps_its_conversation_busy(paying_agent, editor):
    agent, _, _, _ = paying_agent
    body = _pause(agent, editor)
    response = client_for(editor).post(
        f"/api/v1/agents/{agent.pk}/execute/",
        {"input": "And the next one?", "conversation": body["conversation"]},
        format="json",
    )
    assert "waits for a person to approve" in assert_error(response, 409)["message"]


def test_the_wait_does_not_count_against_the_time_limit(paying_agent, editor):
    """A run paused for two hours (longer than its agent's time limit) resumes, completes, and while it
    runs again counts as live from its resumption: nothing treats it as dead."""
    agent, _, _, _ = paying_agent
    execution_id = _pause(agent, editor)["id"]
    Execution.objects.filter(pk=execution_id).update(created_at=timezone.now() - dt.timedelta(hours=2))
    execution = Execution.objects.get(pk=execution_id)
    assert not run_is_live(execution.status, execution.created_at, agent.timeout_seconds)
    approval = ToolApproval.objects.get(execution_id=execution_id)
    services.tool_approval_approve(approval=approval, actor=editor)
    # Resumed but not finished yet: live from ``resumed_at``; its conversation stays busy.
    Execution.objects.filter(pk=execution_id).update(status="running", resumed_at=timezone.now())
    execution.refresh_from_db()
    since = running_since(execution.created_at, execution.resumed_at)
    assert run_is_live(execution.status, since, agent.timeout_seconds)
    nxt = Execution(
        organization=agent.organization, agent=agent, persona=execution.persona, input="next", source="api"
    )
    with pytest.raises(ConversationBusy):
        begin_turn(nxt, Conversation.objects.get(pk=execution.conversation_id), actor=editor, pii=[])
    Execution.objects.filter(pk=execution_id).update(status="awaiting_approval", resumed_at=None)
    finished = resume(approval.pk)
    assert finished.status == "completed", finished.error
    assert finished.latency_ms < 60_000  # the two hours of waiting are not in it


# --- The approval inbox and the console ----------------------------------------------------------------


def test_the_inbox_lists_pending_calls_masked(org, editor, django_assert_max_num_queries):
    client = login(editor)
    ToolApprovalFactory(execution__agent__organization=org, arguments={"q": f"account {IBAN}"})
    ToolApprovalFactory(execution__agent__organization=org, status="approved", decided_at=timezone.now())
    response = client.get("/admin/tool-approvals/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('id="tool-approval-') == 1 and IBAN not in page and "DE89" in page
    ToolApprovalFactory.create_batch(6, execution__agent__organization=org)
    with django_assert_max_num_queries(len(_queries(client, "/admin/tool-approvals/"))):
        assert client.get("/admin/tool-approvals/").content.decode().count('id="tool-approval-') == 7


def _queries(client, url):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(conn) as captured:
        client.get(url)
    return captured.captured_queries


def test_the_inbox_page_approves_with_edited_arguments(
    paying_agent, editor, django_capture_on_commit_callbacks
):
    agent, _, _, received = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    client = login(editor)
    page = client.get(f"/admin/tool-approvals/{approval.pk}/")
    assert page.status_code == 200 and CALL["iban"] in page.content.decode()
    bad = client.post(
        f"/admin/tool-approvals/{approval.pk}/", {"action": "approve", "arguments": '{"iban": "x"}'}
    )
    assert bad.status_code == 400 and "input schema" in bad.content.decode()
    edited = {"iban": CALL["iban"], "amount": "10.00"}
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            f"/admin/tool-approvals/{approval.pk}/", {"action": "approve", "arguments": json.dumps(edited)}
        )
    assert done.status_code == 302 and done["Location"] == "/admin/tool-approvals/"
    assert received == [edited]
    assert Execution.objects.get(pk=approval.execution_id).status == "completed"


def test_the_inbox_page_refuses(paying_agent, editor, django_capture_on_commit_callbacks):
    agent, _, _, received = paying_agent
    approval = ToolApproval.objects.get(execution_id=_pause(agent, editor)["id"])
    client = login(editor)
    assert (
        client.post(f"/admin/tool-approvals/{approval.pk}/", {"action": "refuse", "reason": ""}).status_code
        == 400
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/admin/tool-approvals/{approval.pk}/", {"action": "refuse", "reason": "Not this month."}
        )
    approval.refresh_from_db()
    assert approval.status == "refused" and approval.decided_by == editor and received == []


def test_the_inbox_pages_permissions(org, other_org, viewer):
    mine = ToolApprovalFactory(execution__agent__organization=org, arguments={"q": f"account {IBAN}"})
    theirs = ToolApprovalFactory(execution__agent__organization=other_org)
    client = login(viewer)
    assert client.get("/admin/tool-approvals/").status_code == 200
    shown = client.get(f"/admin/tool-approvals/{mine.pk}/")
    assert shown.status_code == 200 and IBAN not in shown.content.decode()  # a viewer sees it masked
    assert client.post(f"/admin/tool-approvals/{mine.pk}/", {"action": "approve"}).status_code == 403
    assert client.get(f"/admin/tool-approvals/{theirs.pk}/").status_code == 404
    assert Client().get("/admin/tool-approvals/")["Location"].startswith("/admin/login/")
    mine.refresh_from_db()
    assert mine.status == "pending"


def test_the_console_offers_the_decision_on_the_turn(
    paying_agent, editor, django_capture_on_commit_callbacks
):
    agent, _, _, received = paying_agent
    client = login(editor)
    response = client.post("/admin/console/run/", {"agent": agent.pk, "message": QUESTION})
    assert response.status_code == 302
    approval = ToolApproval.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert f'id="approval-{approval.pk}"' in page and "Waiting for approval" in page
    with django_capture_on_commit_callbacks(execute=True):
        decided = client.post(f"/admin/console/tool-approvals/{approval.pk}/decide/", {"action": "approve"})
    assert decided.status_code == 302 and f"#turn-{approval.execution_id}" in decided["Location"]
    assert received == [CALL]
    page = client.get(decided["Location"]).content.decode()
    assert f'id="approval-{approval.pk}"' not in page and "PAY-1" in page


def test_the_console_refusal_and_a_viewer(paying_agent, editor, org):
    agent, _, _, received = paying_agent
    client = login(editor)
    client.post("/admin/console/run/", {"agent": agent.pk, "message": QUESTION})
    approval = ToolApproval.objects.get()
    viewer = UserFactory(username="console-viewer")
    MembershipFactory(user=viewer, organization=org, role="viewer")
    assert (
        login(viewer)
        .post(f"/admin/console/tool-approvals/{approval.pk}/decide/", {"action": "approve"})
        .status_code
        == 403
    )
    client.post(f"/admin/console/tool-approvals/{approval.pk}/decide/", {"action": "refuse", "reason": "No."})
    approval.refresh_from_db()
    assert approval.status == "refused" and received == []


def test_the_assignment_setting_through_the_api_and_the_admin(paying_agent, editor, editor_client):
    agent, _, tool, _ = paying_agent
    assignment = AgentTool.objects.get(agent=agent, tool=tool)
    url = f"/api/v1/agents/{agent.pk}/tools/{assignment.pk}/"
    assert editor_client.get(url).json()["requires_approval"] is None
    response = editor_client.patch(url, {"requires_approval": False}, format="json")
    assert response.status_code == 200 and response.json()["requires_approval"] is False
    assert_error(
        editor_client.patch(url, {"requires_approval": "no"}, format="json"),
        400,
        fields=["requires_approval"],
    )
    page = login(editor).post(
        f"/admin/agents/agent/{agent.pk}/assignments/tools/",
        {
            "action": "update",
            "assignment": assignment.pk,
            "enabled": "on",
            "settings": "{}",
            "requires_approval": "true",
        },
    )
    assert page.status_code in (200, 302)
    assignment.refresh_from_db()
    assert assignment.requires_approval is True
    changes = AuditEvent.objects.filter(object_type="agents.agenttool", object_id=str(assignment.pk))
    assert [e.after.get("requires_approval") for e in changes.order_by("id")] == [False, True]
