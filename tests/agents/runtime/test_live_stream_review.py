"""Review findings on the live answer: what a streamed run shows is what it records, whichever way
the provider cuts its text, across tool rounds, and when the run fails part-way."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from werkzeug import Request, Response

from agents.runtime import execute, execute_stream
from personas.models import Persona
from tests.agents.runtime import test_live_stream
from tests.agents.runtime.test_live_stream import ANSWER, QUESTION
from tests.factories import ModelProviderFactory, release_now
from tests.support.slow_model import assign_demo_guardrails

pytestmark = pytest.mark.django_db

#: The fixture of the live-stream tests: an agent on a local model streaming a given answer.
slow_agent = test_live_stream.slow_agent

PII_IN_ANSWERS = {
    "name": "PII (answers)", "kind": "pii", "action": "redact", "applies_to_input": False,
    "applies_to_output": True, "config": {},
}  # fmt: skip


def _shown(events) -> str:
    """What the client shows at the end: the deltas, or the last retraction's text and the deltas after it."""
    text = ""
    for event in events:
        if event["event"] == "delta":
            text += event["data"]["text"]
        elif event["event"] == "retract":
            text = event["data"]["text"]
    return text


def test_a_sentence_check_never_gives_a_new_value_a_placeholder_the_sweep_took(slow_agent):
    """The persona holds an IBAN: the boundary's sweep sends it as [IBAN_1]. The model writes another
    IBAN; the sentence check must number it [IBAN_2], so the live answer never shows the persona's
    IBAN in its place (and matches the record)."""
    persona_iban, model_iban = "DE89370400440532013000", "GB82WEST12345698765432"
    agent, model = slow_agent(f"Pay the fee to {model_iban} today [1]. Thanks [1].", delay=0.0,
                              extra_guards=[PII_IN_ANSWERS])  # fmt: skip
    Persona.objects.filter(agent=agent).update(
        system_prompt=f"You are a VAT specialist. Fees go to {persona_iban}."
    )
    release_now(agent)
    events = list(execute_stream(agent, QUESTION, source="api"))
    assert persona_iban not in json.dumps(model.bodies)
    deltas = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    assert persona_iban not in deltas and model_iban not in deltas
    assert "[IBAN_2]" in deltas
    final = events[-1]["data"]
    assert final["status"] == "completed", final["error"]
    assert _shown(events) == final["output"]


def _chunk(delta, finish=None) -> str:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(body)}\n\n"


def _words(text: str):
    for word in re.findall(r"\S+\s*", text):
        yield _chunk({"content": word})


@pytest.fixture
def tool_round_agent(httpserver, make_agent, settings, org):
    """``tool_round_agent(first_text, last_text)`` → (agent, bodies): a local model that writes
    ``first_text`` then calls the VAT calculator, and answers ``last_text`` once it has the result."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    def build(first_text, last_text, *, extra_guards=()):
        from tests.agents.runtime.conftest import guardrail

        provider = ModelProviderFactory(
            organization=org, kind="openai_compatible", base_url=httpserver.url_for("/v1"),
            api_key="sk-test", default_model="gpt-test", timeout_seconds=20, max_retries=0,
            price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("0"),
        )  # fmt: skip
        agent = make_agent(provider=provider, guards=None, tools=("vat-calculator",))
        assign_demo_guardrails(agent)
        for order, fields in enumerate(extra_guards, start=10):
            guardrail(agent, order, **fields)
        bodies = []

        def handler(request: Request):
            body = json.loads(request.get_data(as_text=True))
            bodies.append(body)
            call = {"id": "t1", "type": "function",
                    "function": {"name": "vat-calculator", "arguments": json.dumps({"net": "1000", "rate": "19"})}}  # fmt: skip
            first = body["messages"][-1]["role"] != "tool"
            if not body.get("stream"):
                message = {"role": "assistant", "content": first_text if first else last_text}
                if first:
                    message["tool_calls"] = [call]
                choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if first else "stop"}
                usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
                return Response(json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                                            "choices": [choice], "usage": usage}), content_type="application/json")  # fmt: skip
            if first:
                stream = [
                    *_words(first_text),
                    _chunk({"tool_calls": [{"index": 0, **call}]}),
                    _chunk({}, "tool_calls"),
                ]
            else:
                stream = [*_words(last_text), _chunk({}, "stop")]
            return Response([*stream, "data: [DONE]\n\n"], content_type="text/event-stream")

        httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
        return agent, bodies

    return build


def test_text_written_before_a_tool_call_is_recorded_as_shown(tool_round_agent):
    """The model writes a sentence, then calls a tool, then answers: the record holds both rounds'
    text, checked and numbered as one answer, and equals what the client was shown."""
    agent, bodies = tool_round_agent(
        "Let me compute that [1] for you.", "The VAT is 190 EUR [1]. It is due monthly [1]."
    )
    events = list(execute_stream(agent, "What is the VAT on 1000 EUR at 19 %?", source="api"))
    final = events[-1]["data"]
    assert len(bodies) == 2
    assert final["status"] == "completed", final["error"]
    assert final["output"].startswith("Let me compute that [1] for you.\nThe VAT is 190 EUR [1].")
    assert _shown(events) == final["output"]
    assert "retract" not in [e["event"] for e in events]
    # Not streamed: the same answer.
    plain = execute(agent, "What is the VAT on 1000 EUR at 19 %?", source="api")
    assert (plain.status, plain.output) == ("completed", final["output"]), plain.error


def test_a_sentence_blocked_before_a_tool_call_stops_the_run(tool_round_agent):
    """A blocked topic in the text before the tool call: the tool never runs, the model is not called
    again, the run is blocked and its trace names the guardrail."""
    topics = {
        "name": "Blocked topics (answers)", "kind": "blocked_topics", "action": "block",
        "applies_to_input": False, "applies_to_output": True,
        "config": {"topics": [{"name": "Tax evasion", "terms": ["hide income"]}]},
    }  # fmt: skip
    agent, bodies = tool_round_agent("You could hide income [1]. Let me compute that.", "The VAT is 190 EUR [1].",
                                     extra_guards=[topics])  # fmt: skip
    release_now(agent)
    stream = execute_stream(agent, "What is the VAT on 1000 EUR at 19 %?", source="api")
    events = list(stream)
    final = events[-1]["data"]
    assert len(bodies) == 1
    assert (final["status"], final["output"]) == ("blocked", "")
    assert "Blocked topics (answers)" in final["error"]
    assert _shown(events) == ""
    steps = list(stream.execution.steps.order_by("ordinal"))
    assert not [s for s in steps if s.kind == "tool_call"]
    blocked = [s for s in steps if s.status == "blocked"]
    assert [s.name for s in blocked] == ["Blocked topics (answers) (output)"]


ANCHORED = {
    "name": "Starts with The customer", "kind": "regex", "action": "block", "applies_to_input": False,
    "applies_to_output": True, "config": {"patterns": ["^The customer"]},
}  # fmt: skip
ACROSS = {
    "name": "Across two sentences", "kind": "regex", "action": "block", "applies_to_input": False,
    "applies_to_output": True, "config": {"patterns": [r"applies \[1\]\.\s+The customer"]},
}  # fmt: skip


def _streamed_and_plain(agent):
    plain = execute(agent, QUESTION, source="api")
    stream = execute_stream(agent, QUESTION, source="api")
    events = list(stream)
    return events, stream.execution, plain


def test_an_anchored_pattern_is_judged_on_the_answer_not_on_each_sentence(slow_agent):
    """``^The customer`` matches the second sentence alone but not the answer: streamed or not, the
    run completes and the stream shows the whole answer."""
    agent, _ = slow_agent(ANSWER, delay=0.0, extra_guards=[ANCHORED])
    events, streamed, plain = _streamed_and_plain(agent)
    assert plain.status == streamed.status == "completed", streamed.error
    assert streamed.output == plain.output == _shown(events)
    assert "retract" not in [e["event"] for e in events]


def test_an_anchored_pattern_at_the_start_blocks_the_first_sentence(slow_agent):
    """The same pattern on an answer that starts with it: nothing is shown, the run is blocked, and the
    trace has the regex guardrail's step ``blocked``."""
    agent, _ = slow_agent("The customer pays the VAT [1]. " + ANSWER, delay=0.0, extra_guards=[ANCHORED])
    events, streamed, plain = _streamed_and_plain(agent)
    assert [e for e in events if e["event"] == "delta"] == []
    assert plain.status == streamed.status == "blocked"
    assert streamed.error == plain.error
    blocked = [s.name for s in streamed.steps.all() if s.status == "blocked"]
    assert blocked == ["Starts with The customer (output)"]


def test_a_pattern_across_two_sentences_blocks_before_the_second_is_shown(slow_agent):
    agent, _ = slow_agent(ANSWER, delay=0.0, extra_guards=[ACROSS])
    events, streamed, plain = _streamed_and_plain(agent)
    deltas = [e["data"]["text"] for e in events if e["event"] == "delta"]
    assert not any("The customer" in d for d in deltas)
    assert plain.status == streamed.status == "blocked"
    assert [e["event"] for e in events].count("retract") == 1


def test_an_identifier_known_by_the_sentence_before_never_goes_out_raw(slow_agent):
    """ "by phone:" on one line, the number alone on the next: the whole answer's PII check redacts the
    number, and so must the check of the lone line, which reads the line before."""
    number = "03012345678"
    answer = f"Reach the client by phone:\n{number}\nThe reverse charge applies [1]."
    agent, _ = slow_agent(answer, delay=0.0, extra_guards=[PII_IN_ANSWERS])
    events, streamed, plain = _streamed_and_plain(agent)
    assert number not in plain.output
    deltas = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    assert number not in deltas
    assert streamed.status == plain.status == "completed"
    assert streamed.output == plain.output == _shown(events)


def test_a_provider_failure_after_sentences_were_shown_retracts_them(httpserver, make_agent, settings, org):
    """The provider fails mid-answer: the client is told to clear what it showed, with the failure as
    the reason, before the ``execution`` event that records the run ``failed``."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    provider = ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url=httpserver.url_for("/v1"),
        api_key="sk-test", default_model="gpt-test", timeout_seconds=20, max_retries=0,
        price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("0"),
    )  # fmt: skip
    agent = make_agent(provider=provider, guards=None, tools=())
    assign_demo_guardrails(agent)
    failing = [*_words("Hide nothing from the auditor [1]. Next sentence is here"),
               'data: {"error": {"message": "upstream overloaded"}}\n\n']  # fmt: skip
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        lambda request: Response(failing, content_type="text/event-stream")
    )
    events = list(execute_stream(agent, "Who pays the VAT?", source="api"))
    names = [e["event"] for e in events]
    assert "delta" in names
    final = events[-1]["data"]
    assert final["status"] == "failed" and final["output"] == ""
    retract = events[names.index("retract")]["data"]
    assert names.index("retract") == len(names) - 2
    assert retract == {"reason": final["error"], "text": ""}
    assert _shown(events) == final["output"]


def test_a_step_the_door_cannot_render_records_the_real_reason(slow_agent):
    """A door failing to render a step (the console's template) ends the stream with an ``error`` event
    and the run ``failed`` with that reason, not as a client that left."""
    from agents.runtime.serialize import execution_to_dict
    from agents.runtime.streaming import encode

    agent, _ = slow_agent(ANSWER, delay=0.0)
    stream = execute_stream(agent, QUESTION, source="api")
    seen = []

    def broken(data):
        seen.append(data)
        if len(seen) == 3:
            raise RuntimeError("the template broke")
        return data

    body = list(encode(stream, step=broken, execution=execution_to_dict))
    stream.close()
    assert body[-1].startswith("event: error")
    stream.execution.refresh_from_db()
    assert stream.execution.status == "failed"
    assert stream.execution.error.startswith("the stream could not be sent: internal error (RuntimeError)")


def test_a_failure_building_the_last_event_leaves_the_record_as_it_ended(slow_agent):
    """The run had ended (completed) when its ``execution`` event could not be built: the stream ends
    with ``error`` and the record stays as it was, as docs/api.md says."""
    from agents.runtime.streaming import encode

    agent, _ = slow_agent(ANSWER, delay=0.0)
    stream = execute_stream(agent, QUESTION, source="api")

    def broken(execution):
        raise RuntimeError("the serializer broke")

    body = list(encode(stream, execution=broken))
    stream.close()
    assert body[-1].startswith("event: error")
    stream.execution.refresh_from_db()
    assert stream.execution.status == "completed"
