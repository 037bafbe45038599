"""Conversations through the API: ``conversation`` on execute (absent starts one, given continues it),
``/conversations/`` and their turns — scoping, rights, bad input, query counts."""

from __future__ import annotations

import pytest

from agents.models import Conversation, Execution
from tests.agents.runtime.test_api_execute import parse_sse
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    ConversationFactory,
    ExecutionFactory,
    PersonaFactory,
)

pytestmark = pytest.mark.django_db

QUESTION = "What is the VAT on €1,000 at 19%?"
ERROR_KEYS = {"status", "code", "message", "errors"}


def execute_url(agent) -> str:
    return f"/api/v1/agents/{agent.pk}/execute/"


def turns_url(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/turns/"


@pytest.fixture
def agent(make_agent):
    return make_agent(guards=None)


@pytest.fixture
def key(org):
    return APIKeyFactory(organization=org, name="Portal", scopes=["read", "execute"])


@pytest.fixture
def key_api(key):
    return client_for(key=key.plaintext)


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS and body["status"] == status
    return body


# --- execute ----------------------------------------------------------------------------------------


def test_a_run_without_conversation_starts_one_and_a_run_with_it_continues(agent, key, key_api):
    first = key_api.post(execute_url(agent), {"input": "Is DE89370400440532013000 valid?"}, format="json")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["turn"] == 1 and body["conversation"] is not None
    conversation = Conversation.objects.get(pk=body["conversation"])
    assert conversation.started_by_api_key == key and conversation.title == "Is DE89 •••• 3000 valid?"
    second = key_api.post(
        execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"
    )
    assert second.status_code == 201, second.content
    data = second.json()
    assert (data["conversation"], data["turn"]) == (conversation.pk, 2)
    messages = next(s for s in data["steps"] if s["kind"] == "model_call")["input"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Is DE89370400440532013000 valid?"  # no PII guardrail on this agent


def test_a_streamed_run_reports_its_conversation(agent, key_api):
    response = key_api.post(
        execute_url(agent) + "?stream=true",
        {"input": QUESTION},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    events = parse_sse(b"".join(response.streaming_content))
    final = events[-1][1]
    assert events[-1][0] == "execution" and final["turn"] == 1
    assert Execution.objects.get(pk=final["id"]).conversation_id == final["conversation"]


def test_an_editor_continues_a_colleagues_conversation(agent, editor_client, owner):
    conversation = ConversationFactory(agent=agent, started_by_user=owner)
    ExecutionFactory(agent=agent, conversation=conversation, turn=1)
    response = editor_client.post(
        execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["turn"] == 2


def test_an_api_key_continues_only_the_conversations_it_started(agent, key_api, org, editor):
    started_by_member = ConversationFactory(agent=agent, started_by_user=editor)
    other_key = APIKeyFactory(organization=org, name="Other", scopes=["execute"])
    by_other_key = ConversationFactory(agent=agent, started_by_api_key=other_key)
    for conversation in (started_by_member, by_other_key):
        body = _error(
            key_api.post(
                execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"
            ),
            403,
        )
        assert "continues only the conversations it started" in body["message"]
    assert not Execution.objects.exists()


def test_another_organisations_conversation_is_answered_like_an_unknown_one(agent, key_api, other_org):
    foreign_agent = AgentFactory(organization=other_org, name="Theirs", slug="theirs")
    foreign = ConversationFactory(agent=foreign_agent)
    unknown = foreign.pk + 1000
    bodies = [
        # 404 like any unknown object named in a body (schemathesis: a schema-valid body refused).
        _error(key_api.post(execute_url(agent), {"input": QUESTION, "conversation": pk}, format="json"), 404)
        for pk in (foreign.pk, unknown)
    ]
    assert bodies[0]["errors"] == {"conversation": [f"No conversation {foreign.pk} in your organisation."]}
    assert bodies[1]["errors"] == {"conversation": [f"No conversation {unknown} in your organisation."]}
    assert not Execution.objects.exists()


def test_another_agents_conversation_is_a_clear_400(agent, key_api, org, key):
    sibling = AgentFactory(organization=org, name="Audit helper", slug="audit-helper", status="active")
    PersonaFactory(agent=sibling, is_active=True)
    conversation = ConversationFactory(agent=sibling, started_by_api_key=key)
    body = _error(
        key_api.post(execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"),
        400,
    )
    assert "is with the agent 'Audit helper'" in body["errors"]["conversation"][0]


@pytest.mark.parametrize("value", ["abc", 0, -3, 2**64, 1.5, [1], {"id": 1}, True])
def test_a_malformed_conversation_is_a_400(agent, key_api, value):
    body = _error(
        key_api.post(execute_url(agent), {"input": QUESTION, "conversation": value}, format="json"), 400
    )
    assert list(body["errors"]) == ["conversation"]
    assert not Execution.objects.exists()


def test_a_turn_while_the_previous_one_runs_is_a_409(agent, key_api, key):
    conversation = ConversationFactory(agent=agent, started_by_api_key=key)
    ExecutionFactory(agent=agent, conversation=conversation, turn=1, status="running", output="")
    body = _error(
        key_api.post(execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"),
        409,
    )
    assert "still running" in body["message"]


def test_a_deprecated_agents_conversation_cannot_continue(agent, key_api, key):
    conversation = ConversationFactory(agent=agent, started_by_api_key=key)
    agent.status = "deprecated"
    agent.save()
    body = _error(
        key_api.post(execute_url(agent), {"input": QUESTION, "conversation": conversation.pk}, format="json"),
        409,
    )
    assert "deprecated" in body["message"]


# --- listing --------------------------------------------------------------------------------------------


def test_conversations_are_listed_with_their_turns(agent, viewer_client, org, editor):
    conversation = ConversationFactory(agent=agent, started_by_user=editor, title="Is [IBAN] valid?")
    for n in (2, 1, 3):
        ExecutionFactory(agent=agent, conversation=conversation, turn=n, input=f"Q{n}")
    other_agent = AgentFactory(organization=org, name="Other", slug="other")
    ConversationFactory(agent=other_agent)
    listed = viewer_client.get("/api/v1/conversations/", {"agent": agent.pk})
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [r["id"] for r in rows] == [conversation.pk]
    assert rows[0]["turn_count"] == 3 and rows[0]["title"] == "Is [IBAN] valid?"
    assert rows[0]["agent_name"] == agent.name and rows[0]["started_by_user"] == editor.pk
    detail = viewer_client.get(f"/api/v1/conversations/{conversation.pk}/")
    assert detail.status_code == 200 and detail.json()["turn_count"] == 3
    turns = viewer_client.get(turns_url(conversation)).json()
    assert [t["turn"] for t in turns["results"]] == [1, 2, 3]
    assert [t["input"] for t in turns["results"]] == ["Q1", "Q2", "Q3"]
    assert all(t["conversation"] == conversation.pk for t in turns["results"])
    executions = viewer_client.get("/api/v1/executions/", {"conversation": conversation.pk}).json()
    assert sorted(e["turn"] for e in executions["results"]) == [1, 2, 3]


def test_another_organisations_conversation_is_a_404(agent, viewer_client, other_org):
    foreign = ConversationFactory(agent=AgentFactory(organization=other_org, name="Theirs", slug="theirs"))
    assert viewer_client.get(f"/api/v1/conversations/{foreign.pk}/").status_code == 404
    assert viewer_client.get(turns_url(foreign)).status_code == 404
    assert viewer_client.get("/api/v1/conversations/").json()["results"] == []


def test_rights_to_read_conversations(agent, api_client, org, viewer_client):
    conversation = ConversationFactory(agent=agent)
    # A viewer reads conversations but may not run, so may not continue one either.
    response = viewer_client.post(execute_url(agent), {"input": QUESTION, "conversation": conversation.pk})
    _error(response, 403)
    assert api_client.get("/api/v1/conversations/").status_code in (401, 403)
    assert api_client.get(turns_url(conversation)).status_code in (401, 403)
    no_read = client_for(key=APIKeyFactory(organization=org, name="Runner", scopes=["execute"]).plaintext)
    _error(no_read.get("/api/v1/conversations/"), 403)
    reader = client_for(key=APIKeyFactory(organization=org, name="Reader", scopes=["read"]).plaintext)
    assert reader.get(turns_url(conversation)).status_code == 200
    # Read-only: nothing creates, changes or deletes a conversation here.
    assert reader.post("/api/v1/conversations/", {}, format="json").status_code == 405
    assert reader.delete(f"/api/v1/conversations/{conversation.pk}/").status_code == 405


@pytest.mark.parametrize("query", [{"agent": "x"}, {"agent": 2**70}, {"created_after": "yesterday"}])
def test_bad_filters_are_a_400(agent, viewer_client, query):
    _error(viewer_client.get("/api/v1/conversations/", query), 400)


def test_listing_costs_the_same_whatever_the_number_of_conversations_and_turns(
    agent, viewer_client, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add(count: int) -> None:
        for _ in range(count):
            conversation = ConversationFactory(agent=agent)
            for n in range(1, 4):
                ExecutionFactory(agent=agent, conversation=conversation, turn=n)

    add(1)
    with CaptureQueriesContext(connection) as one:
        viewer_client.get("/api/v1/conversations/")
        viewer_client.get(turns_url(Conversation.objects.first()))
    add(10)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(viewer_client.get("/api/v1/conversations/").json()["results"]) == 11
        viewer_client.get(turns_url(Conversation.objects.first()))
