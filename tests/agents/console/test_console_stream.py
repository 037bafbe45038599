"""The console streams the answer live with every demo guardrail assigned, through the same event
protocol as the API: sentences before the model has finished, a retraction with the reason when a
guardrail blocks, the finished turn last."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from agents.models import Execution
from guardrails.services import guardrail_create
from tests.factories import AgentGuardrailFactory, ModelProviderFactory
from tests.support.slow_model import SlowModel, assign_demo_guardrails, read_sse

pytestmark = pytest.mark.django_db

RUN = reverse("admin:console:run")
STREAM = {"HTTP_ACCEPT": "text/event-stream", "HTTP_HX_REQUEST": "true"}
SENTENCES = [
    "The customer accounts for the VAT, e.g. under § 13b UStG. ",
    "The invoice shows 1.000,00 EUR net and 19 % VAT. ",
    "Both VAT numbers must be on it.",
]


@pytest.fixture
def slow_console_agent(agent, httpserver, settings):
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    def build(answer, *, delay=0.05, gated=False):
        agent.provider = ModelProviderFactory(
            organization=agent.organization, kind="openai_compatible", base_url=httpserver.url_for("/v1"),
            api_key="sk-test", default_model="gpt-test", timeout_seconds=20, max_retries=0,
            price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("0"),
        )  # fmt: skip
        agent.save()
        assign_demo_guardrails(agent)
        model = SlowModel(answer, delay=delay, gated=gated)
        httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(model)
        return model

    return build


def test_the_console_shows_sentences_before_the_model_has_finished(editor_web, agent, slow_console_agent):
    # Gated: the model writes a sentence only once the one before has reached the client, so the
    # order below holds however slowly the machine runs.
    model = slow_console_agent(SENTENCES, gated=True)
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Who pays the VAT?"}, **STREAM)
    assert response.status_code == 200
    events = read_sse(
        response.streaming_content, on_event=lambda name, data: model.proceed() if name == "delta" else None
    )
    deltas = [(data["text"], at) for name, data, at in events if name == "delta"]
    assert [text for text, _ in deltas[:3]] == SENTENCES
    assert deltas[0][1] < model.finished and deltas[1][1] < model.finished
    assert model.gate_timeouts == 0
    steps = [data for name, data, _ in events if name == "step"]
    assert steps and all("html" in s and "kind" in s for s in steps)
    name, finished, _ = events[-1]
    execution = Execution.objects.get()
    assert name == "execution" and finished["id"] == execution.pk and finished["status"] == "completed"
    assert f'id="turn-{execution.pk}"' in finished["html"]


def test_the_console_retracts_a_blocked_answer_with_the_reason(editor_web, agent, slow_console_agent):
    slow_console_agent([SENTENCES[0], "Insider trading pays off. ", SENTENCES[2]])
    topics = guardrail_create(
        organization=agent.organization, actor=None, name="Topics in answers", kind="blocked_topics",
        action="block", applies_to_input=False, applies_to_output=True,
        config={"topics": [{"name": "Market abuse", "terms": ["insider trading"]}]},
    )  # fmt: skip
    AgentGuardrailFactory(agent=agent, guardrail=topics, order=20)
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Who pays the VAT?"}, **STREAM)
    events = read_sse(response.streaming_content)
    names = [name for name, _, _ in events]
    assert [data["text"] for name, data, _ in events if name == "delta"] == [SENTENCES[0]]
    retract = next(data for name, data, _ in events if name == "retract")
    assert retract == {"reason": retract["reason"], "text": ""}
    assert "Topics in answers" in retract["reason"] and "Market abuse" in retract["reason"]
    assert names[-1] == "execution" and events[-1][1]["status"] == "blocked"
    assert "Insider" not in "".join(str(data) for name, data, _ in events if name in ("delta", "retract"))
    assert Execution.objects.get().status == "blocked"


def test_the_consoles_execution_event_has_the_apis_members(editor_web, editor, agent, slow_console_agent):
    """One protocol: the console's finished turn carries every member of the API's execution body
    (``html`` added), with the requester and the agent's name."""
    from agents.api.serializers import ExecutionDetailSerializer

    slow_console_agent(SENTENCES, delay=0.0)
    response = editor_web.post(RUN, {"agent": agent.pk, "message": "Who pays the VAT?"}, **STREAM)
    name, finished, _ = read_sse(response.streaming_content)[-1]
    assert name == "execution"
    assert set(finished) == {*ExecutionDetailSerializer.Meta.fields, "html"}
    assert (finished["agent_name"], finished["actor_user"], finished["actor_api_key"]) == (
        agent.name,
        editor.pk,
        None,
    )
