"""Bounded answers: every provider request carries max_tokens, the persona's or the default (1,024)."""
# ruff: noqa: F811 (the fixture ``remote`` is imported from the provider tests)

from __future__ import annotations

import pytest
from werkzeug import Response

from agents.runtime import execute, execute_stream
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401, F811 (fixture)
from tests.factories import release_now

pytestmark = pytest.mark.django_db


def test_a_persona_without_max_tokens_sends_the_default(remote):
    agent, model = remote(completion("Fine."))
    persona = agent.personas.get(is_active=True)
    assert persona.max_tokens is None
    execution = execute(agent, "Who accounts for the VAT on B2B services?", source="api")
    assert execution.status == "completed", execution.error
    assert model.bodies[0]["max_tokens"] == 1024
    assert execution.steps.get(kind="model_call").input["max_tokens"] == 1024


def test_the_personas_own_value_is_sent(remote):
    agent, model = remote(completion("Fine."))
    agent.personas.filter(is_active=True).update(max_tokens=300)
    release_now(agent)
    execution = execute(agent, "Who accounts for the VAT on B2B services?", source="api")
    assert execution.status == "completed", execution.error
    assert model.bodies[0]["max_tokens"] == 300


def test_the_default_is_a_setting_and_holds_for_streaming_and_every_round(remote, settings):
    settings.DEFAULT_MAX_TOKENS = 200
    call = {"index": 0, "id": "call_x", "type": "function", "function": {"name": "vat-calculator"}}
    call["function"]["arguments"] = '{"net": "100.00", "rate": "19"}'
    first = Response(
        chunk({"role": "assistant", "tool_calls": [call]}) + chunk(finish="tool_calls") + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )
    second = Response(
        chunk({"role": "assistant", "content": "The VAT is €19.00."})
        + chunk(finish="stop")
        + "data: [DONE]\n\n",
        content_type="text/event-stream",
    )
    agent, model = remote(first, second)
    events = list(execute_stream(agent, "What is 19 % VAT on 100 EUR net?", source="api"))
    assert events[-1]["data"]["status"] == "completed", events[-1]["data"].get("error")
    assert [body["max_tokens"] for body in model.bodies] == [200, 200]
    assert all(body["stream"] is True for body in model.bodies)


def test_the_offline_engine_stops_at_max_tokens(make_agent):
    agent = make_agent(tools=())
    agent.personas.filter(is_active=True).update(max_tokens=5)
    release_now(agent)
    execution = execute(agent, "Who accounts for the VAT on B2B services?", source="api")
    assert execution.status == "completed", execution.error
    step = execution.steps.get(kind="model_call")
    assert step.input["max_tokens"] == 5
    assert step.output["finish_reason"] == "length"
    assert len(step.output["content"]) <= 20
