"""The console's conversations: successive messages continue one conversation (the model reads the
earlier turns), "New conversation" starts another, and a posted conversation must be the
organisation's and the agent's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Conversation, Execution
from tests.agents.console.test_console import STREAM, events_of
from tests.factories import AgentFactory, ConversationFactory, PersonaFactory

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:console:index")
RUN = reverse("admin:console:run")
CLEAR = reverse("admin:console:clear")


def _sent_messages(execution) -> list[dict]:
    """What the model was sent (the first model call's request, as the trace records it)."""
    return execution.steps.filter(kind="model_call").order_by("ordinal").first().input["messages"]


def test_successive_messages_continue_one_conversation(editor_web, editor, agent):
    """Plain posts: the first starts a conversation, the second (the page's hidden field holding its
    id) is its turn 2, and the model reads the first turn before the new question."""
    editor_web.post(RUN, {"agent": agent.pk, "message": "What is the reverse charge?"})
    first = Execution.objects.get()
    assert first.conversation is not None and first.turn == 1
    conversation = first.conversation
    assert conversation.started_by_user == editor and conversation.title == "What is the reverse charge?"
    page = editor_web.get(INDEX, {"agent": agent.pk})
    assert f'name="conversation" value="{conversation.pk}"' in page.text
    editor_web.post(RUN, {"agent": agent.pk, "message": "And for goods?", "conversation": conversation.pk})
    second = Execution.objects.order_by("-id").first()
    assert (second.conversation_id, second.turn) == (conversation.pk, 2)
    roles = [(m["role"], m["content"]) for m in _sent_messages(second)[1:]]
    assert roles[0] == ("user", "What is the reverse charge?")
    assert roles[1] == ("assistant", first.output)
    assert roles[-1][1].endswith("And for goods?")
    page = editor_web.get(INDEX, {"agent": agent.pk})
    assert page.text.count('id="turn-') == 2


def test_streamed_messages_continue_the_conversation_kept_in_the_session(editor_web, agent):
    """A streamed first turn does not reload the page: the next post (hidden field still blank)
    continues the conversation the session keeps."""
    events_of(editor_web.post(RUN, {"agent": agent.pk, "message": "Hello", "conversation": ""}, **STREAM))
    events = events_of(
        editor_web.post(RUN, {"agent": agent.pk, "message": "Hello again", "conversation": ""}, **STREAM)
    )
    assert events[-1][0] == "execution"
    turns = list(Execution.objects.order_by("id").values_list("conversation_id", "turn"))
    assert Conversation.objects.count() == 1
    assert turns == [(turns[0][0], 1), (turns[0][0], 2)]


def test_new_conversation_starts_another(editor_web, agent):
    editor_web.post(RUN, {"agent": agent.pk, "message": "Hello"})
    editor_web.post(CLEAR, {"agent": agent.pk})
    page = editor_web.get(INDEX, {"agent": agent.pk})
    assert (
        'name="conversation" type="hidden"' in page.text or 'type="hidden" name="conversation"' in page.text
    )
    assert 'name="conversation" value=' not in page.text
    editor_web.post(RUN, {"agent": agent.pk, "message": "A new subject"})
    first, second = Execution.objects.order_by("id")
    assert second.turn == 1 and second.conversation_id != first.conversation_id
    # Nothing of the first conversation went to the model.
    assert [m["role"] for m in _sent_messages(second)] == ["system", "user"]


def test_a_conversation_of_another_organisation_or_agent_is_refused(editor_web, agent, org, other_agent):
    foreign = ConversationFactory(agent=other_agent)
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Hi", "conversation": foreign.pk})
    assert response.status_code == 400
    assert "not one of your organisation&#x27;s" in response.text
    sibling = AgentFactory(organization=org, name="Audit helper", slug="audit-helper")
    PersonaFactory(agent=sibling, is_active=True)
    theirs = ConversationFactory(agent=sibling)
    response = editor_web.post(
        RUN, {"agent": agent.pk, "message": "Hi", "conversation": theirs.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "This conversation is with another agent" in response.text
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Hi", "conversation": "x"})
    assert response.status_code == 400
    assert not Execution.objects.exists()


def test_a_turn_asked_while_the_previous_one_runs_is_refused(editor_web, agent):
    editor_web.post(RUN, {"agent": agent.pk, "message": "Hello"})
    first = Execution.objects.get()
    Execution.objects.filter(pk=first.pk).update(status="running")
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Again"}, **STREAM)
    assert response.status_code == 409
    assert "still running" in response.text
    assert Execution.objects.count() == 1
