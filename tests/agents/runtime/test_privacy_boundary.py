"""The privacy boundary: with a PII guardrail, no client identifier reaches the provider by any path —
the input, an approved learning example, a retrieved passage, a tool result fed back to the model, an
earlier turn of the conversation the run continues.

A real local OpenAI-compatible server records every request body; the HTTP tool is answered by a real
local peer. Each place holds identifiers of every kind the PII check supports (its own values, so a
leak is traced to its path)."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug import Response

from agents.models import AgentTool, ExecutionStatus, LearningExampleStatus
from agents.runtime import execute, execute_stream
from agents.runtime.boundary import WITHHELD_TOOL_RESULT
from guardrails.checks import build_check
from guardrails.checks.pii import ENTITIES
from tests.agents.runtime.conftest import guardrail
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401 (the fixture)
from tests.factories import (
    ChunkFactory,
    ConversationFactory,
    DocumentFactory,
    ExecutionFactory,
    LearningExampleFactory,
    ToolFactory,
    release_now,
)

pytestmark = pytest.mark.django_db

#: Identifiers of every supported kind, one set per path.
VALUES = {
    "input": {
        "email": "anna.schmidt@example.com",
        "phone": "+44 20 7946 0958",
        "iban": "DE89370400440532013000",
        "card": "4111 1111 1111 1111",
        "us_ssn": "536-22-8726",
        "us_ein": "12-3456789",
        "uk_nino": "AB 12 34 56 C",
        "uk_utr": "1955839661",
        "eu_vat": "DE136695976",
    },
    "example": {
        "email": "bernd.meyer@example.org",
        "phone": "+44 20 7946 0321",
        "iban": "GB82WEST12345698765432",
        "card": "5500 0000 0000 0004",
        "us_ssn": "123-45-6789",
        "us_ein": "04-2103594",
        "uk_nino": "CE 12 34 56 D",
        "uk_utr": "2234567890",
        "eu_vat": "FR 40 303 265 045",
    },
    "passage": {
        "email": "clara.vogel@example.net",
        "phone": "+44 20 7946 0777",
        "iban": "GB29NWBK60161331926819",
        "card": "3782 822463 10005",
        "us_ssn": "212-33-4455",
        "us_ein": "13-2345678",
        "uk_nino": "JG 10 30 40 B",
        "uk_utr": "8876543210",
        "eu_vat": "GB 980 7806 84",
    },
    "tool": {
        "email": "dieter.koch@example.de",
        "phone": "+44 20 7946 0123",
        "iban": "NL91ABNA0417164300",
        "card": "4012 8888 8888 1881",
        "us_ssn": "321-54-9876",
        "us_ein": "94-1234567",
        "uk_nino": "PL 99 88 77 A",
        "uk_utr": "2112233445",
        "eu_vat": "NL 004495445B01",
    },
    "turn": {
        "email": "erika.lange@example.com",
        "phone": "+44 20 7946 0456",
        "iban": "ES9121000418450200051332",
        "card": "6011 1111 1111 1117",
        "us_ssn": "512-43-8899",
        "us_ein": "95-3456789",
        "uk_nino": "TB 23 45 67 C",
        "uk_utr": "3300000006",
        "eu_vat": "ATU13585627",
    },
}


def holding(place: str) -> str:
    v = VALUES[place]
    return (
        f"Mail {v['email']}, call {v['phone']}. IBAN {v['iban']}, card {v['card']}, SSN {v['us_ssn']}, "
        f"EIN {v['us_ein']}, NI number {v['uk_nino']}, UTR {v['uk_utr']}, VAT {v['eu_vat']}."
    )


CLEAN_INPUT = "What do we hold on the client file for the reverse charge?"
PASSAGE = "Client file for the reverse charge. " + holding("passage") + " Old account DE89370400440532013000."
PLACEHOLDER = re.compile(r"\[[A-Z]+_\d+\]")
#: The conversation's earlier turn, as stored: what the requester typed and saw.
EARLIER_QUESTION = "Please keep the client's details on file. " + holding("turn")
EARLIER_ANSWER = f"Kept on file: IBAN {VALUES['turn']['iban']}, mail {VALUES['turn']['email']}."


def test_every_place_holds_every_supported_kind():
    """The test data is what it claims: the PII check finds each of its kinds in each place."""
    pii = build_check("pii", {})
    for place in VALUES:
        found = pii.find(holding(place))
        assert sorted({e for *_, e in found}) == sorted(ENTITIES), place
        assert sorted(holding(place)[s:e] for s, e, _ in found) == sorted(VALUES[place].values())


def _echo_placeholders(body):
    """The model's answer: every placeholder it was sent, so the requester's answer shows them back."""
    seen = list(dict.fromkeys(PLACEHOLDER.findall(json.dumps(body["messages"]))))
    return completion("Noted: " + " ".join(seen) + " [1]")


@pytest.fixture
def boundary_run(remote, httpserver, settings, org, vat_kb):  # noqa: F811 (the imported fixture)
    """``boundary_run(action, input, **pii_fields)`` → (execution, recorded bodies): an agent whose PII
    guardrail has ``action`` (None: no PII guardrail), with an approved example, a passage and an HTTP
    tool whose results hold identifiers; the run continues a conversation whose earlier turn holds
    identifiers too; the model calls the tool, then answers with what it saw."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    document = DocumentFactory(knowledge_base=vat_kb, title="Client file")
    ChunkFactory(document=document, ordinal=0, page=1, heading_path="Reverse charge", text=PASSAGE)
    tool = ToolFactory(
        organization=org, name="Client register", slug="client-register", url_template=httpserver.url_for("/register"),
        http_method="GET", input_schema={"type": "object", "properties": {}},
    )  # fmt: skip
    httpserver.expect_request("/register").respond_with_json({"customer": holding("tool")})

    def run(action, text=CLEAN_INPUT, replies=None, stream=False, **pii_fields):
        replies = replies or (completion(tool_calls=[("client-register", "{}")]), _echo_placeholders)
        agent, model = remote(*replies, guards=None)
        AgentTool.objects.create(agent=agent, tool=tool, order=5)
        LearningExampleFactory(
            agent=agent,
            status=LearningExampleStatus.APPROVED,
            input="Is this client's record complete? " + holding("example"),
            output="Yes: the record is complete.",
        )
        conversation = ConversationFactory(agent=agent, title="Client details")
        ExecutionFactory(
            agent=agent, conversation=conversation, turn=1, status=ExecutionStatus.COMPLETED,
            input=EARLIER_QUESTION, output=EARLIER_ANSWER,
        )  # fmt: skip
        if action is not None:
            guardrail(agent, 0, name=f"PII {action}", kind="pii", action=action, config={}, **pii_fields)
        release_now(agent)
        if stream:
            events = list(execute_stream(agent, text, source="api", conversation=conversation))
            return events, model.bodies
        execution = execute(agent, text, source="api", conversation=conversation)
        assert execution.turn == 2
        return execution, model.bodies

    return run


def _sent(bodies) -> str:
    return "\n".join(json.dumps(b, ensure_ascii=False) for b in bodies)


def _leaks(bodies, places=VALUES) -> list[str]:
    sent = _sent(bodies)
    return [value for place in places for value in VALUES[place].values() if value in sent]


def _boundary_steps(execution):
    return {
        s.input["part"]: s
        for s in execution.steps.filter(kind="guardrail")
        if s.input.get("stage") == "boundary"
    }


def test_redact_sends_no_identifier_by_any_path_and_the_requester_sees_them_back(boundary_run):
    execution, bodies = boundary_run("redact", holding("input") + " " + CLEAN_INPUT)
    assert execution.status == "completed", execution.error
    assert len(bodies) == 2
    assert _leaks(bodies) == []
    first = bodies[0]["messages"]
    # The example, the passage and (second call) the tool result went, as placeholders.
    assert "Is this client's record complete? Mail [EMAIL_" in first[1]["content"]
    assert "Client file for the reverse charge. Mail [EMAIL_" in first[-1]["content"]
    # The earlier turn went before the question, as placeholders; its answer's values keep the
    # placeholders they have in its question.
    assert [m["role"] for m in first[3:5]] == ["user", "assistant"]
    assert first[3]["content"].startswith("Please keep the client's details on file. Mail [EMAIL_")
    turn_iban = re.search(r"IBAN (\[IBAN_\d+\]), card", first[3]["content"]).group(1)
    assert first[4]["content"].startswith(f"Kept on file: IBAN {turn_iban}, mail [EMAIL_")
    tool_message = bodies[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "[IBAN_" in json.loads(tool_message["content"])["customer"]
    # Numbered across the run: the input's IBAN is [IBAN_1] in the passage too; 5 IBANs, 5 placeholders.
    assert "Old account [IBAN_1]." in first[-1]["content"]
    assert set(re.findall(r"\[IBAN_\d+\]", _sent(bodies))) == {f"[IBAN_{n}]" for n in range(1, 6)}
    # The requester sees every value back, whichever path it came by.
    for place in VALUES:
        for value in VALUES[place].values():
            assert value in execution.output, (place, value)
    steps = _boundary_steps(execution)
    assert set(steps) == {
        "learning examples", "earlier turns", "retrieved passages", "tool result of Client register"
    }  # fmt: skip
    for step in steps.values():
        assert step.status == "warned" and step.output["withheld"] == [] and step.output["redacted"]
        assert "sent with the identifiers as placeholders" in step.output["message"]
        assert _leaks([step.output]) == []
    # The trace's order: the boundary's step on the passages follows the search.
    kinds = [s.name for s in execution.steps.order_by("ordinal")]
    assert kinds.index("Knowledge search") + 1 == kinds.index(steps["retrieved passages"].name)


def test_block_withholds_the_example_passage_and_tool_result_and_the_run_goes_on(boundary_run):
    execution, bodies = boundary_run("block")
    assert execution.status == "completed", execution.error
    assert _leaks(bodies) == []
    first = bodies[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user"]  # the example and the earlier turn withheld
    assert "Client file" not in first[-1]["content"]  # the passage withheld, the others sent
    assert "[1] (VAT manual" in first[-1]["content"]
    assert bodies[1]["messages"][-1]["content"] == WITHHELD_TOOL_RESULT
    steps = _boundary_steps(execution)
    assert set(steps) == {
        "learning examples", "earlier turns", "retrieved passages", "tool result of Client register"
    }  # fmt: skip
    assert steps["earlier turns"].output["withheld"] == ["earlier turn 1"]
    example = steps["learning examples"].output
    assert example["withheld"] == ["learning example 1"]
    assert "Withheld by the guardrail 'PII block'" in example["parts"][0]["reason"]
    assert "withheld (it holds client identifiers): learning example 1" in example["message"]
    passages = steps["retrieved passages"].output
    assert len(passages["withheld"]) == 1 and passages["withheld"][0].startswith("passage of Client file")
    assert steps["tool result of Client register"].output["withheld"] == ["tool result of Client register"]
    assert all(s.status == "dropped" for s in steps.values())  # withheld; the run went on
    # The search lists the passages sent, numbered as the model saw them, and the one withheld.
    retrieval = execution.steps.get(kind="retrieval").output
    assert "Client file" not in [p["document_title"] for p in retrieval["passages"]]
    assert [p["document_title"] for p in retrieval["withheld"]] == ["Client file"]
    assert retrieval["passages"][0]["n"] == 1 and "[1] (VAT manual" in first[-1]["content"]
    assert _leaks([s.output for s in steps.values()]) == []


def test_block_still_ends_the_run_when_the_input_holds_an_identifier(boundary_run):
    execution, bodies = boundary_run("block", holding("input"))
    assert execution.status == "blocked" and "PII block" in execution.error
    assert bodies == []


def test_warn_sends_the_identifiers_and_flags_the_steps(boundary_run):
    execution, bodies = boundary_run("warn", holding("input") + " " + CLEAN_INPUT)
    assert execution.status == "completed", execution.error
    assert sorted(_leaks(bodies)) == sorted(v for place in VALUES for v in VALUES[place].values())
    steps = _boundary_steps(execution)
    assert set(steps) >= {"learning examples", "earlier turns", "retrieved passages"}
    for step in steps.values():
        assert step.status == "flagged" and step.output["flagged"] and step.output["withheld"] == []
        assert "sent with client identifiers (warn)" in step.output["message"]


def test_without_a_pii_guardrail_everything_is_sent_as_it_is(boundary_run):
    execution, bodies = boundary_run(None, holding("input") + " " + CLEAN_INPUT)
    assert execution.status == "completed", execution.error
    assert sorted(_leaks(bodies)) == sorted(v for place in VALUES for v in VALUES[place].values())
    assert _boundary_steps(execution) == {}
    assert PLACEHOLDER.search(_sent(bodies)) is None


def test_a_pii_guardrail_of_the_retrieval_stage_guards_every_path(boundary_run):
    """Assigned to the retrieval stage only, it still screens the input, the example and the tool result."""
    execution, bodies = boundary_run(
        "redact", holding("input") + " " + CLEAN_INPUT, applies_to_input=False, applies_to_retrieval=True
    )
    assert execution.status == "completed", execution.error
    assert _leaks(bodies) == []
    assert set(_boundary_steps(execution)) >= {"input", "learning examples", "earlier turns"}
    assert VALUES["input"]["iban"] in execution.output


def test_a_blocking_pii_guardrail_of_the_retrieval_stage_blocks_an_input_holding_an_identifier(
    boundary_run,
):
    execution, bodies = boundary_run(
        "block", holding("input"), applies_to_input=False, applies_to_retrieval=True
    )
    assert execution.status == "blocked" and "PII block" in execution.error
    assert bodies == []
    step = _boundary_steps(execution)["input"]
    assert step.status == "blocked" and _leaks([step.output]) == []


def _streamed(*pieces, tool_call=False):
    if tool_call:
        call = {"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "client-register", "arguments": "{}"}}  # fmt: skip
        body = chunk({"role": "assistant", "tool_calls": [call]}) + chunk(finish="tool_calls")
    else:
        body = "".join(chunk({"content": p}) for p in pieces) + chunk(finish="stop")
    return Response(body + "data: [DONE]\n\n", content_type="text/event-stream")


def test_a_streamed_answer_shows_the_requester_the_values_of_every_path(boundary_run):
    """Deltas go out live, sentence by sentence; a placeholder split across provider chunks is
    restored whole, whether it stands for the requester's value or a passage's or a tool's."""

    def answer(body):
        question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        passage_iban = re.search(r"IBAN (\[IBAN_\d+\]), card", question)
        tool_iban = re.findall(r"\[IBAN_\d+\]", body["messages"][-1]["content"])[0]
        text = f"Accounts: [IBAN_1], {passage_iban.group(1)} and {tool_iban}."
        return _streamed(text[:12], text[12:20], text[20:])

    events, bodies = boundary_run(
        "redact", VALUES["input"]["iban"] + " " + CLEAN_INPUT, stream=True,
        replies=(_streamed(tool_call=True), answer),
    )  # fmt: skip
    assert _leaks(bodies) == []
    final = events[-1]["data"]
    assert final["status"] == "completed", final["error"]
    expected = (
        f"Accounts: {VALUES['input']['iban']}, {VALUES['passage']['iban']} and {VALUES['tool']['iban']}."
    )
    assert final["output"] == expected
    deltas = [e["data"]["text"] for e in events if e["event"] == "delta"]
    assert "".join(deltas) == expected and not any("[IBAN" in d for d in deltas)
