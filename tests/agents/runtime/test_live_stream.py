"""The live answer: with every demo guardrail assigned, a slowly streaming local model's sentences
reach the client before the model has finished; a blocked sentence is never shown and a block at the
end retracts what was; the record is the same as a run that did not stream."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from agents.models import Execution
from agents.runtime import execute, execute_stream
from tests.agents.runtime.conftest import guardrail
from tests.conftest import client_for
from tests.factories import APIKeyFactory, ModelProviderFactory, release_now
from tests.support.slow_model import SlowModel, assign_demo_guardrails, read_sse

pytestmark = pytest.mark.django_db

QUESTION = "Who accounts for the VAT under the reverse charge for B2B services?"
S1 = "For B2B services across EU borders the reverse charge applies [1]. "
S2 = "The customer accounts for the VAT in its own Member State, e.g. in Germany under § 13b UStG [1]. "
S3 = "The invoice must say 'Reverse charge' and show both VAT numbers [1]."
ANSWER = S1 + S2 + S3


@pytest.fixture
def slow_agent(httpserver, make_agent, settings, org):
    """``slow_agent(answer, delay=…, extra_guards=…)`` → (agent, model): an agent on a local
    OpenAI-compatible server that streams ``answer`` word by word, with every demo guardrail, released."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    def build(answer, *, delay=0.02, extra_guards=(), cut=r"\S+\s*", gated=False):
        provider = ModelProviderFactory(
            organization=org, kind="openai_compatible", base_url=httpserver.url_for("/v1"),
            api_key="sk-test", default_model="gpt-test", timeout_seconds=20, max_retries=0,
            price_input_per_1k=Decimal("0"), price_output_per_1k=Decimal("0"),
        )  # fmt: skip
        agent = make_agent(provider=provider, guards=None, tools=())
        assign_demo_guardrails(agent)
        for order, fields in enumerate(extra_guards, start=10):
            guardrail(agent, order, **fields)
        release_now(agent)
        model = SlowModel(answer, delay=delay, cut=cut, gated=gated)
        httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(model)
        return agent, model

    return build


def timed(events, gated_model=None) -> list[tuple[str, dict, float]]:
    """The events with their arrival times; each delta lets a gated model write its next sentence."""
    import time

    timed_events = []
    for e in events:
        timed_events.append((e["event"], e["data"], time.monotonic()))
        if gated_model is not None and e["event"] == "delta":
            gated_model.proceed()
    return timed_events


def release_on_delta(model):
    """``read_sse``'s ``on_event`` that lets a gated model go on once a sentence has arrived."""
    return lambda name, data: model.proceed() if name == "delta" else None


def test_sentences_arrive_before_the_model_has_finished(slow_agent):
    """With every demo guardrail assigned (PII redaction, prompt injection, citations required,
    disclaimer, blocked topics), each checked sentence is sent while the model is still writing.
    The model writes a sentence only once the one before has reached the client (gated), so this
    holds however slowly the machine runs, and fails if a sentence waits for more of the answer."""
    agent, model = slow_agent([S1, S2, S3], delay=0.05, gated=True)
    events = timed(execute_stream(agent, QUESTION, source="api"), gated_model=model)
    deltas = [(data["text"], at) for name, data, at in events if name == "delta"]
    assert [text for text, _ in deltas[:3]] == [S1, S2, S3]
    # Sentences 1 and 2 reach the client before the model sends its last word.
    assert deltas[0][1] < model.finished and deltas[1][1] < model.finished
    # Each sentence reached the client while the model held back the next one: none waited for it.
    assert model.gate_timeouts == 0
    final = events[-1][1]
    assert final["status"] == "completed", final["error"]
    assert "".join(text for text, _ in deltas) == final["output"]
    assert final["output"].startswith(ANSWER) and "qualified professional" in final["output"]
    assert "retract" not in [name for name, _, _ in events]


#: The demo's guardrails screen topics in the question only; this one screens the answer too.
TOPICS_IN_ANSWERS = {
    "name": "Blocked topics (answers)", "kind": "blocked_topics", "action": "block",
    "applies_to_input": False, "applies_to_output": True,
    "config": {"topics": [{"name": "Tax evasion", "terms": ["hide income", "off the books"]}]},
}  # fmt: skip


def test_a_blocked_sentence_is_never_shown_and_retracts_the_answer(slow_agent):
    """A blocked topic in sentence 3: sentences 1–2 are shown, then a retraction with the reason; the
    run is recorded blocked and no delta ever carries the blocked sentence."""
    bad = "You could simply hide income from the tax office. "
    agent, _ = slow_agent(S1 + S2 + bad + S3, extra_guards=[TOPICS_IN_ANSWERS])
    events = timed(execute_stream(agent, QUESTION, source="api"))
    names = [name for name, _, _ in events]
    deltas = [data["text"] for name, data, _ in events if name == "delta"]
    assert deltas == [S1, S2]
    assert not any("hide income" in d for d in deltas)
    retract = next(data for name, data, _ in events if name == "retract")
    assert retract["text"] == "" and "Blocked topics (answers)" in retract["reason"]
    assert "Tax evasion" in retract["reason"]
    assert names.index("retract") > max(i for i, n in enumerate(names) if n == "delta")
    assert names.count("retract") == 1
    final = events[-1][1]
    assert (final["status"], final["output"]) == ("blocked", "")
    assert final["error"] == retract["reason"]


def test_a_missing_citation_blocks_at_the_end_and_retracts(slow_agent):
    """Citations required decides on the whole answer: everything is shown, then retracted."""
    uncited = "The customer accounts for the VAT in its own Member State. Nothing else is needed here."
    agent, _ = slow_agent(uncited)
    events = timed(execute_stream(agent, QUESTION, source="api"))
    names = [name for name, _, _ in events]
    deltas = [data["text"] for name, data, _ in events if name == "delta"]
    assert "".join(deltas) == uncited and len(deltas) == 2
    retract = next(data for name, data, _ in events if name == "retract")
    assert "Citations required" in retract["reason"]
    assert names.index("retract") > names.index("delta")
    final = events[-1][1]
    assert final["status"] == "blocked" and final["error"] == retract["reason"]


def test_a_placeholder_split_across_chunks_reaches_the_requester_restored(slow_agent):
    """The requester's IBAN goes to the model as a placeholder; the model's answer, streamed with the
    placeholder cut in two chunks ("[IB" + "AN_1] "), shows the requester the value and never the
    placeholder."""
    iban = "DE89370400440532013000"
    answer, cut = "The account [IBAN_1] is German [1]. It is valid [1].", r"\[IB|\S+\s*"
    assert "[IB" in re.findall(cut, answer) and "AN_1] " in re.findall(cut, answer)
    agent, model = slow_agent(answer, cut=cut)
    events = timed(
        execute_stream(agent, f"Is the IBAN {iban} a German account for reverse charge?", source="api")
    )
    deltas = [data["text"] for name, data, _ in events if name == "delta"]
    assert deltas[0] == f"The account {iban} is German [1]. "
    assert not any("[IBAN" in d for d in deltas)
    assert iban not in str(model.bodies)
    assert events[-1][1]["status"] == "completed"


def _record(execution):
    steps = [
        (s.kind, s.name, s.status, {k: v for k, v in s.output.items() if k != "duration_ms"})
        for s in execution.steps.all()
        if s.kind == "guardrail"
    ]
    return execution.status, execution.output, execution.error, execution.citations, steps


@pytest.mark.parametrize(
    "answer",
    [
        ANSWER,
        S1 + "Just hide income off the books. " + S3,
        "No citation in this answer at all, which the firm requires for every answer.",
        S1 + "Write to max.mustermann@example.com or call +49 30 1234567 [1]. " + S3,
        S1 + "Project Falcon is confidential [1]. " + S3,
    ],
    ids=["clean", "blocked-topic", "uncited", "pii-in-answer", "keyword-redacted"],
)
def test_the_record_is_the_same_streamed_or_not(slow_agent, answer):
    """For the same provider output, a streamed run records the same answer, status, error, citations
    and guardrail steps as a run that did not stream."""
    keyword = {"name": "Project names", "kind": "keywords", "action": "redact", "applies_to_output": True,
               "config": {"keywords": ["project falcon"]}}  # fmt: skip
    pii = {"name": "PII (answers)", "kind": "pii", "action": "redact", "applies_to_input": False,
           "applies_to_output": True, "config": {}}  # fmt: skip
    agent, _ = slow_agent(answer, delay=0.0, extra_guards=[keyword, TOPICS_IN_ANSWERS, pii])
    plain = execute(agent, QUESTION, source="api")
    stream = execute_stream(agent, QUESTION, source="api")
    events = list(stream)
    assert _record(stream.execution) == _record(plain)
    deltas = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    if plain.status == "completed":
        assert deltas == plain.output
        assert "falcon" not in deltas.lower() and "max.mustermann" not in deltas
    else:
        assert any(e["event"] == "retract" for e in events)


# --- through the API ------------------------------------------------------------------------------


@pytest.fixture
def execute_client(org):
    return client_for(key=APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext)


def _post_stream(client, agent, text=QUESTION):
    return client.post(
        f"/api/v1/agents/{agent.pk}/execute/?stream=true", {"input": text}, format="json",
        HTTP_ACCEPT="text/event-stream",
    )  # fmt: skip


def test_the_api_streams_sentences_before_the_model_has_finished(slow_agent, execute_client):
    agent, model = slow_agent([S1, S2, S3], delay=0.05, gated=True)
    response = _post_stream(execute_client, agent)
    assert response.status_code == 201 and response["Content-Type"].startswith("text/event-stream")
    events = read_sse(response.streaming_content, on_event=release_on_delta(model))
    deltas = [(data["text"], at) for name, data, at in events if name == "delta"]
    assert [text for text, _ in deltas[:2]] == [S1, S2]
    assert deltas[0][1] < model.finished and model.gate_timeouts == 0
    assert events[-1][0] == "execution" and events[-1][1]["status"] == "completed"
    assert events[-1][1]["output"] == "".join(text for text, _ in deltas)


def test_the_api_retracts_a_blocked_answer(slow_agent, execute_client):
    agent, _ = slow_agent(S1 + "Keep it off the books. " + S3, extra_guards=[TOPICS_IN_ANSWERS])
    events = read_sse(_post_stream(execute_client, agent).streaming_content)
    names = [name for name, _, _ in events]
    assert [data["text"] for name, data, _ in events if name == "delta"] == [S1]
    assert names.index("retract") < names.index("execution") == len(names) - 1
    retract = next(data for name, data, _ in events if name == "retract")
    assert events[-1][1]["status"] == "blocked" and events[-1][1]["error"] == retract["reason"]
    assert Execution.objects.get().status == "blocked"


@pytest.mark.django_db(transaction=True)
def test_a_client_that_disconnects_mid_stream_leaves_the_run_failed(slow_agent, live_server, org):
    """A real HTTP client reads the first sentence, then hangs up: the server notices at its next
    write, and the run ends failed, with the reason. The model holds its second sentence until the
    client has gone (gated), so the run cannot have finished before the client hangs up."""
    import time

    import httpx2

    agent, model = slow_agent([S1, S2, S3], delay=0.05, gated=True)
    key = APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext
    with httpx2.Client(timeout=20) as client, client.stream(
        "POST", f"{live_server.url}/api/v1/agents/{agent.pk}/execute/?stream=true", json={"input": QUESTION},
        headers={"Authorization": f"Api-Key {key}", "Accept": "text/event-stream"},
    ) as response:  # fmt: skip
        assert response.status_code == 201
        received = ""
        for text in response.iter_text():
            received += text
            if "event: delta" in received:
                break
    assert Execution.objects.get().status == "running"
    model.proceed(2)  # the model writes on; the server's next write finds the client gone
    deadline = time.monotonic() + 30
    while Execution.objects.get().status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    execution = Execution.objects.get()
    assert (execution.status, execution.error) == (
        "failed",
        "the client closed the stream before the run finished",
    )
    assert execution.output == ""


def test_the_schema_describes_the_stream_events(slow_agent, execute_client):
    """The OpenAPI schema has a component for each event, named on the text/event-stream answer, and
    the events a run sends conform to them."""
    import jsonschema

    schema = execute_client.get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]
    media = schema["paths"]["/api/v1/agents/{id}/execute/"]["post"]["responses"]["201"]["content"]
    assert media["text/event-stream"]["x-events"] == {"$ref": "#/components/schemas/StreamEvent"}
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in components["StreamEvent"]["oneOf"]}
    assert names == {
        f"Stream{e}Event" for e in ("Step", "Delta", "Retract", "Approval", "Execution", "Error")
    }
    agent, _ = slow_agent(S1 + "Keep it off the books. " + S3, delay=0.0, extra_guards=[TOPICS_IN_ANSWERS])
    events = read_sse(_post_stream(execute_client, agent).streaming_content)
    for name, data, _ in events:
        if name in ("delta", "retract"):
            body = {"event": name, "data": data}
            jsonschema.validate(
                body, {**components[f"Stream{name.capitalize()}Event"], "additionalProperties": False}
            )


def test_a_notice_placed_before_the_answer_replaces_what_was_shown(slow_agent):
    """A disclaimer at the start is decided on the whole answer: the client gets the answer as
    recorded in a ``retract`` without a reason, and the run completes."""
    notice = {"name": "Notice first", "kind": "disclaimer", "action": "append", "applies_to_input": False,
              "applies_to_output": True, "config": {"text": "Draft for review.", "position": "start"}}  # fmt: skip
    agent, _ = slow_agent(ANSWER, delay=0.0, extra_guards=[notice])
    events = list(execute_stream(agent, QUESTION, source="api"))
    retract = next(e["data"] for e in events if e["event"] == "retract")
    final = events[-1]["data"]
    assert final["status"] == "completed"
    assert retract == {"reason": "", "text": final["output"]}
    assert final["output"].startswith("Draft for review.\n\n" + S1)


def test_a_failure_while_encoding_ends_the_stream_with_an_error_event(slow_agent):
    """Anything that fails while the stream is written ends it with an ``error`` event in the API's
    error shape, rather than a cut connection."""
    import json

    from agents.runtime.streaming import encode

    agent, _ = slow_agent(ANSWER, delay=0.0)
    stream = execute_stream(agent, QUESTION, source="api")

    def broken(execution):
        raise RuntimeError("the serializer broke")

    body = list(encode(stream, execution=broken))
    assert body[0].startswith("event: step") and any(b.startswith("event: delta") for b in body)
    name, data = body[-1].split("\n")[:2]
    assert name == "event: error"
    assert json.loads(data.removeprefix("data: ")) == {
        "status": 500, "code": "run_failed", "errors": {},
        "message": "The run failed unexpectedly. The server log has the details.",
    }  # fmt: skip
