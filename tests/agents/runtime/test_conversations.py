"""Conversations in the runtime: turns numbered one at a time, the history the model reads (completed
turns only, within the limits), titles without client identifiers, and what a turn costs in SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Conversation, Execution
from agents.runtime import ConversationBusy, execute, execute_stream
from agents.runtime.citations import without_citations
from agents.runtime.conversations import NEW, TITLE_LENGTH, conversation_title
from prisma_glow.audit.models import AuditEvent
from tests.factories import ConversationFactory, ExecutionFactory, release_now

pytestmark = pytest.mark.django_db

QUESTION = "Who accounts for the VAT on B2B services?"


def _history_sent(execution) -> list[tuple[str, str]]:
    """The (role, content) pairs the model read between the system message and the question."""
    messages = execution.steps.filter(kind="model_call").order_by("ordinal").first().input["messages"]
    return [(m["role"], m["content"]) for m in messages[1:-1]]


def test_title_masks_every_client_identifier_and_stays_short():
    title = conversation_title("Is the IBAN DE89370400440532013000 valid?\n Mail anna.schmidt@example.com")
    assert title == "Is the IBAN DE89 •••• 3000 valid? Mail a••••@••••.com"
    long = conversation_title("Why " * 30 + "DE89370400440532013000")
    assert len(long) <= TITLE_LENGTH and long.endswith("…") and "DE89" not in long
    cut = conversation_title("x" * 70 + " DE89370400440532013000 and more")
    # Never a part of a masked form: the cut falls before it.
    assert cut == "x" * 70 + "…"
    # The one rule: the values the agent's own PII guardrails know (``known``) are masked too.
    assert conversation_title("Client Smith 0412 345 678 asks") == "Client Smith 0412 345 678 asks"
    assert conversation_title("Client Smith 0412 345 678 asks", known=["0412 345 678"]) == (
        "Client Smith 04 •••• 78 asks"
    )


def test_a_new_conversation_costs_one_insert_and_names_no_identifier(make_agent, editor):
    agent = make_agent(guards=None)
    execute(agent, QUESTION, source="api")  # loads the configuration
    # The same input alone and in a new conversation: a run that keeps passages also reads their
    # documents' SHA-256 (one query), so two inputs that retrieve differently would differ by it.
    with CaptureQueriesContext(connection) as alone:
        execute(agent, "Is DE89370400440532013000 valid?", source="api", actor=editor)
    with CaptureQueriesContext(connection) as started:
        execution = execute(
            agent, "Is DE89370400440532013000 valid?", source="api", actor=editor, conversation=NEW
        )
    extra = [
        q["sql"]
        for q in started.captured_queries[: len(started.captured_queries) - len(alone.captured_queries)]
    ]
    assert len(started.captured_queries) == len(alone.captured_queries) + 1
    assert any('INSERT INTO "agents_conversation"' in q["sql"] for q in started.captured_queries), extra
    conversation = execution.conversation
    assert execution.turn == 1 and conversation.agent == agent and conversation.started_by_user == editor
    assert str(conversation) == f"Is DE89 •••• 3000 valid? (#{conversation.pk})"
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert event.after["conversation"] == conversation.pk and event.after["turn"] == 1
    assert "DE89370400440532013000" not in f"{event.object_repr} {event.after}"


def test_a_run_without_a_conversation_has_none(vat_agent):
    execution = execute(vat_agent, QUESTION, source="api")
    assert execution.conversation is None and execution.turn is None
    assert not Conversation.objects.exists()


def test_turns_continue_in_order_and_the_model_reads_the_completed_ones(make_agent):
    agent = make_agent(guards=None)
    first = execute(agent, "What is the VAT on €1,000 at 19%?", source="api", conversation=NEW)
    conversation = first.conversation
    # A failed and a blocked turn: their questions and (missing) answers are not sent.
    ExecutionFactory(
        agent=agent, conversation=conversation, turn=2, status="failed", input="Broken", output=""
    )
    ExecutionFactory(
        agent=agent, conversation=conversation, turn=3, status="blocked", input="Forbidden", output=""
    )
    third = execute(agent, QUESTION, source="api", conversation=conversation)
    assert third.turn == 4 and third.status == "completed", third.error
    assert _history_sent(third) == [
        ("user", "What is the VAT on €1,000 at 19%?"),
        ("assistant", without_citations(first.output)),
    ]


def test_the_history_keeps_to_its_limits(make_agent, settings):
    agent = make_agent(guards=None, knowledge=False, tools=())
    conversation = ConversationFactory(agent=agent)
    for n in range(1, 4):
        ExecutionFactory(agent=agent, conversation=conversation, turn=n, input=f"Q{n}", output=f"A{n}" * 10)
    settings.CONVERSATION_HISTORY_TURNS = 2
    run = execute(agent, QUESTION, source="api", conversation=conversation)
    assert _history_sent(run) == [
        ("user", "Q2"),
        ("assistant", "A2" * 10),
        ("user", "Q3"),
        ("assistant", "A3" * 10),
    ]
    # Only whole turns within the character budget, newest first: Q4 + its answer fit, nothing older.
    settings.CONVERSATION_HISTORY_CHARS = len(QUESTION) + len(run.output)
    settings.CONVERSATION_HISTORY_TURNS = 10
    latest = execute(agent, QUESTION, source="api", conversation=conversation)
    assert _history_sent(latest) == [("user", QUESTION), ("assistant", run.output)]
    settings.CONVERSATION_HISTORY_TURNS = 0
    assert _history_sent(execute(agent, QUESTION, source="api", conversation=conversation)) == []


def test_a_turn_is_refused_while_the_previous_one_runs(make_agent):
    agent = make_agent(guards=None)
    conversation = ConversationFactory(agent=agent)
    running = ExecutionFactory(agent=agent, conversation=conversation, turn=1, status="running", output="")
    with pytest.raises(ConversationBusy, match="still running"):
        execute(agent, QUESTION, source="api", conversation=conversation)
    with pytest.raises(ConversationBusy):
        execute_stream(agent, QUESTION, source="api", conversation=conversation)
    assert Execution.objects.filter(conversation=conversation).count() == 1
    # A turn a crashed process left running no longer holds the conversation.
    Execution.objects.filter(pk=running.pk).update(
        created_at=timezone.now() - timedelta(seconds=agent.timeout_seconds + 61)
    )
    assert execute(agent, QUESTION, source="api", conversation=conversation).turn == 2


def test_a_conversation_continues_with_its_own_agent_only(make_agent):
    agent = make_agent(guards=None)
    other = make_agent(guards=None, name="Other adviser")
    conversation = ConversationFactory(agent=other)
    with pytest.raises(ValueError):
        execute(agent, QUESTION, source="api", conversation=conversation)
    assert not Execution.objects.exists()


def test_a_streamed_turn_carries_its_conversation(make_agent):
    agent = make_agent(guards=None)
    first = execute(agent, QUESTION, source="api", conversation=NEW)
    events = list(execute_stream(agent, "And for goods?", source="api", conversation=first.conversation))
    final = events[-1]["data"]
    assert final["conversation"] == first.conversation_id and final["turn"] == 2


def test_continuing_costs_a_few_statements_whatever_the_history(make_agent):
    """The lock, the last turn and the history: three reads, whatever the number of turns."""
    agent = make_agent(guards=None)
    execute(agent, QUESTION, source="api")
    with CaptureQueriesContext(connection) as alone:
        execute(agent, QUESTION, source="api")
    conversation = execute(agent, QUESTION, source="api", conversation=NEW).conversation
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as turn:
            execute(agent, QUESTION, source="api", conversation=conversation)
        counts.append(len(turn.captured_queries))
    assert len(set(counts)) == 1
    # Three reads, and the atomic block around them (a savepoint inside a test's transaction).
    assert counts[0] == len(alone.captured_queries) + 3 + (2 if connection.in_atomic_block else 0)
    if connection.vendor == "postgresql":
        assert any(
            "FOR UPDATE" in q["sql"] and "agents_conversation" in q["sql"] for q in turn.captured_queries
        )


@pytest.mark.django_db(transaction=True)
def test_two_turns_asked_at_once_one_starts_the_other_is_refused(make_agent):
    """Two connections continue one conversation at the same moment (PostgreSQL, real row locks): the
    first records turn 2 (running), the second is refused — never two turns 2, never two runs."""
    import threading

    from agents.runtime.pipeline import start

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    agent = make_agent(guards=None)
    conversation = execute(agent, QUESTION, source="api", conversation=NEW).conversation
    barrier, results = threading.Barrier(2), []

    def ask():
        try:
            barrier.wait(timeout=10)
            results.append(start(agent, QUESTION, source="api", conversation=conversation).execution.turn)
        except ConversationBusy:
            results.append("busy")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=str) == [2, "busy"]
    assert list(conversation.turns.order_by("turn").values_list("turn", "status")) == [
        (1, "completed"),
        (2, "running"),
    ]


def test_earlier_answers_and_examples_go_to_the_model_without_their_citation_markers(make_agent):
    """An earlier turn's "[1]" cites that turn's passages, an example's "[2]" another retrieval's: the
    model reads them without markers, so a "[1]" it copies cannot stand for this turn's passage 1."""
    from agents.models import LearningExampleStatus
    from tests.factories import LearningExampleFactory

    agent = make_agent(guards=None)
    LearningExampleFactory(
        agent=agent, status=LearningExampleStatus.APPROVED, input="Who pays?",
        output="The customer pays [2]. It is due monthly [source 3].",
    )  # fmt: skip
    release_now(agent)
    first = execute(agent, "What is the VAT on €1,000 at 19%?", source="api", conversation=NEW)
    assert "[1]" in first.output
    second = execute(agent, QUESTION, source="api", conversation=first.conversation)
    history = _history_sent(second)
    assert history[1] == ("assistant", "The customer pays. It is due monthly.")
    assert [role for role, _ in history] == ["user", "assistant", "user", "assistant"]
    assert history[3][1] and "[" not in history[3][1]
