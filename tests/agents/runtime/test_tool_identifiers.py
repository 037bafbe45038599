"""Tools inside the firm get the real values: with PII redaction on, a placeholder the model writes in a
tool call (``[VAT_1]``) is restored before a built-in tool, or an HTTP tool marked ``inside_firm``, runs;
any other tool gets the placeholder. The result goes back to the model with the same placeholder, and
the trace records placeholders, never the values.

A real local OpenAI-compatible server records every request body; HTTP tools are answered by a real
local peer on the same server."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug import Response

from agents.models import AgentTool
from agents.runtime import execute
from agents.runtime.providers.offline import plan_tool_call
from guardrails.engine import restore
from prisma_glow.audit.models import AuditEvent
from tests.agents.runtime.conftest import guardrail
from tests.agents.runtime.test_openai_provider import completion, remote  # noqa: F401 (the fixture)
from tests.factories import ToolFactory, release_now

pytestmark = pytest.mark.django_db

VAT_NUMBER = "DE136695976"
IBAN = "DE89370400440532013000"
IBAN_TYPED = "DE89 3704 0044 0532 0130 00"
#: An account the client register returns that the requester never typed.
PREVIOUS_IBAN = "GB29NWBK60161331926819"


def _placeholder(body, label: str) -> str:
    return re.search(rf"\[{label}_\d+\]", json.dumps(body["messages"])).group()


def _calls(tool: str, **arguments):
    """The model's first reply: a call of ``tool`` with the placeholders it was sent (``{VAT}`` → ``[VAT_1]``)."""

    def reply(body):
        filled = {
            key: re.sub(r"\{(\w+)\}", lambda m: _placeholder(body, m.group(1)), value)
            for key, value in arguments.items()
        }
        return completion(tool_calls=[(tool, json.dumps(filled))])

    return reply


def _echo_tool_result(body):
    """The model's answer: the tool's result as it read it."""
    return completion("The tool says: " + body["messages"][-1]["content"])


def _sent(bodies) -> str:
    return "\n".join(json.dumps(b, ensure_ascii=False) for b in bodies)


def _tool_step(execution):
    return next(s for s in execution.steps.all() if s.kind == "tool_call")


def _pii_agent(remote, *replies, **kwargs):  # noqa: F811 (the fixture, passed on)
    agent, model = remote(*replies, guards=None, **kwargs)
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    return agent, model


# --- Built-in tools ------------------------------------------------------------------------------


def test_the_validator_gets_the_real_number_and_its_result_reaches_the_provider_redacted(remote):  # noqa: F811
    agent, model = _pii_agent(
        remote, _calls("vat-iban-validator", value="{VAT}", kind="vat"), _echo_tool_result
    )
    release_now(agent)
    execution = execute(agent, f"Is {VAT_NUMBER} a valid VAT number?", source="api")
    assert execution.status == "completed", execution.error
    assert len(model.bodies) == 2 and VAT_NUMBER not in _sent(model.bodies)
    # "[VAT_1]" itself is not a valid VAT number: valid proves the validator got the real one.
    result = json.loads(model.bodies[1]["messages"][-1]["content"])
    assert result == {"kind": "vat", "valid": True, "compact": "[VAT_1]", "country": "DE"}
    # The requester sees the number back.
    assert VAT_NUMBER in execution.output and "[VAT_1]" not in execution.output
    step = _tool_step(execution)
    assert step.status == "ok"
    assert step.input["arguments"] == {"value": "[VAT_1]", "kind": "vat"}
    assert step.input["placeholders_restored"] == ["[VAT_1]"]
    assert step.output["output"]["compact"] == "[VAT_1]" and step.output["output"]["valid"] is True
    assert VAT_NUMBER not in json.dumps(step.input) + json.dumps(step.output)


def test_an_identifier_the_tool_spells_another_way_keeps_its_placeholder(remote):  # noqa: F811
    """The IBAN typed with spaces comes back compact and formatted: both are [IBAN_1], never [IBAN_2]."""
    agent, model = _pii_agent(
        remote, _calls("vat-iban-validator", value="{IBAN}", kind="iban"), _echo_tool_result
    )
    release_now(agent)
    execution = execute(agent, f"Is the IBAN {IBAN_TYPED} valid?", source="api")
    assert execution.status == "completed", execution.error
    sent = _sent(model.bodies)
    assert IBAN not in sent and IBAN_TYPED not in sent and "[IBAN_2]" not in sent
    result = json.loads(model.bodies[1]["messages"][-1]["content"])
    assert result["valid"] is True
    assert result["compact"] == result["formatted"] == "[IBAN_1]"
    assert json.loads(execution.redactions) == {"[IBAN_1]": IBAN_TYPED}


def test_without_redaction_the_tool_gets_what_the_model_wrote(remote):  # noqa: F811
    """No PII guardrail: nothing to restore, the value goes through as typed (and the step says nothing
    was restored)."""
    agent, model = remote(
        completion(tool_calls=[("vat-iban-validator", json.dumps({"value": VAT_NUMBER}))]),
        _echo_tool_result,
        guards=None,
    )
    execution = execute(agent, f"Is {VAT_NUMBER} a valid VAT number?", source="api")
    assert execution.status == "completed", execution.error
    assert VAT_NUMBER in model.bodies[1]["messages"][-1]["content"]
    assert "placeholders_restored" not in _tool_step(execution).input


# --- HTTP tools ----------------------------------------------------------------------------------


@pytest.fixture
def client_register(httpserver, settings, org):
    """``client_register(inside_firm, max_length=64)`` → (tool, values it received): an HTTP tool on a
    real local peer that looks an IBAN up (GET, the IBAN in the query) and answers with it."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    received: list[str] = []

    def handler(request):
        received.append(request.args.get("iban", ""))
        body = {"iban": request.args.get("iban", ""), "previous": PREVIOUS_IBAN, "status": "active"}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/register").respond_with_handler(handler)

    def make(agent, *, inside_firm, max_length=64):
        tool = ToolFactory(
            organization=org, name="Client register", slug="client-register",
            url_template=httpserver.url_for("/register"), http_method="GET", inside_firm=inside_firm,
            input_schema={"type": "object", "properties": {"iban": {"type": "string", "maxLength": max_length}},
                          "required": ["iban"]},
        )  # fmt: skip
        AgentTool.objects.create(agent=agent, tool=tool, order=5)
        return tool, received

    return make


@pytest.mark.parametrize("inside_firm", [False, True])
def test_an_http_tool_gets_the_real_value_only_when_inside_the_firm(remote, client_register, inside_firm):  # noqa: F811
    agent, model = _pii_agent(remote, _calls("client-register", iban="{IBAN}"), _echo_tool_result)
    _, received = client_register(agent, inside_firm=inside_firm)
    release_now(agent)
    execution = execute(agent, f"Is the account {IBAN} still active?", source="api")
    assert execution.status == "completed", execution.error
    assert received == [IBAN if inside_firm else "[IBAN_1]"]
    # Either way the provider never had the IBAN, and read the same placeholder back.
    assert IBAN not in _sent(model.bodies) and PREVIOUS_IBAN not in _sent(model.bodies)
    read = json.loads(model.bodies[1]["messages"][-1]["content"])
    assert read["iban"] == "[IBAN_1]" and read["previous"] == "[IBAN_2]"
    step = _tool_step(execution)
    assert step.input["arguments"] == {"iban": "[IBAN_1]"}
    assert ("placeholders_restored" in step.input) is inside_firm
    # The step records the result as the model read it.
    assert step.output["output"] == read
    assert IBAN in execution.output


def test_arguments_are_validated_as_the_tool_receives_them_and_the_error_keeps_the_placeholder(
    remote,  # noqa: F811
    client_register,
):
    """The real IBAN is longer than the schema allows ("[IBAN_1]" is not): the call is refused, the peer
    never called, and neither the run's error nor its audit event quotes the IBAN."""
    agent, model = _pii_agent(remote, _calls("client-register", iban="{IBAN}"), _echo_tool_result)
    _, received = client_register(agent, inside_firm=True, max_length=12)
    release_now(agent)
    execution = execute(agent, f"Is the account {IBAN} still active?", source="api")
    assert execution.status == "failed"
    assert "invalid arguments" in execution.error and "[IBAN_1]" in execution.error
    assert IBAN not in execution.error and received == []
    step = _tool_step(execution)
    assert step.status == "failed" and IBAN not in json.dumps(step.output)
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert IBAN not in json.dumps(event.after)


def test_a_withheld_tool_result_is_recorded_without_its_identifiers(remote, client_register):  # noqa: F811
    """With ``block`` the result holding an identifier is withheld: the model reads a notice, the step
    records the result redacted, and the withheld value enters no mapping."""
    agent, model = remote(
        completion(tool_calls=[("client-register", json.dumps({"iban": "unknown"}))]),
        _echo_tool_result,
        guards=None,
    )
    guardrail(agent, 0, name="PII", kind="pii", action="block", config={})
    client_register(agent, inside_firm=True)
    release_now(agent)
    execution = execute(agent, "Is the client's account still active?", source="api")
    assert execution.status == "completed", execution.error
    assert PREVIOUS_IBAN not in _sent(model.bodies)
    assert "withheld" in model.bodies[1]["messages"][-1]["content"]
    step = _tool_step(execution)
    assert PREVIOUS_IBAN not in json.dumps(step.output)
    assert step.output["output"]["previous"] == "[IBAN_1]"
    # No placeholder stands for it (a typed "[IBAN_1]" restores nothing); the record knows it only to
    # mask it wherever it might show (a placeholder-less entry, agents.privacy).
    assert json.loads(execution.redactions) == {"found:IBAN:1": PREVIOUS_IBAN}
    assert restore("[IBAN_1]", json.loads(execution.redactions)) == "[IBAN_1]"


# --- The offline engine ------------------------------------------------------------------------


def test_the_offline_engine_plans_the_validator_for_a_placeholder():
    tools = {"vat-iban-validator"}
    assert plan_tool_call("Is [VAT_1] a valid VAT number?", tools) == (
        "vat-iban-validator",
        {"value": "[VAT_1]", "kind": "vat"},
    )
    assert plan_tool_call("Please check [IBAN_2] for me.", tools) == (
        "vat-iban-validator",
        {"value": "[IBAN_2]", "kind": "iban"},
    )
    assert plan_tool_call("Is [VAT_1] a valid VAT number?", {"vat-calculator"}) is None
    assert plan_tool_call("Who is [EMAIL_1]? Is it valid?", tools) is None


@pytest.mark.parametrize(
    ("question", "placeholder", "answer"),
    [
        (f"Is {VAT_NUMBER} a valid VAT number?", "[VAT_1]", f"{VAT_NUMBER} is a valid VAT number (DE)."),
        (f"Is the IBAN {IBAN} valid?", "[IBAN_1]", f"{IBAN} is a valid IBAN (DE)."),
        # A wrong check digit is no identifier: the PII check leaves it, the validator says why.
        ("Is DE136695978 a valid VAT number?", None, "DE136695978 is not a valid VAT number"),
    ],
)
def test_the_demo_question_with_pii_redaction_calls_the_validator_with_the_real_value(
    make_agent, question, placeholder, answer
):
    """Offline engine, every demo guardrail assigned (PII redaction among them)."""
    agent = make_agent()
    execution = execute(agent, question, source="api")
    assert execution.status == "completed", execution.error
    assert answer in execution.output
    step = _tool_step(execution)
    assert step.name == "VAT number and IBAN validator" and step.status == "ok"
    if placeholder:
        assert step.input["arguments"]["value"] == placeholder
        assert step.input["placeholders_restored"] == [placeholder]
        assert step.output["output"]["valid"] is True
    else:
        assert "placeholders_restored" not in step.input


# --- Input guardrail statuses --------------------------------------------------------------------


def test_a_triggered_input_warn_flags_the_step(make_agent):
    """``warn`` sends the input as typed and flags the step; a redaction stays ``warned``."""
    agent = make_agent(guards=None, tools=())
    guardrail(agent, 0, name="Falcon watch", kind="keywords", action="warn", config={"keywords": ["falcon"]})
    guardrail(agent, 1, name="PII", kind="pii", action="redact", config={})
    release_now(agent)
    execution = execute(agent, f"Does the falcon project invoice {IBAN} need a VAT number?", source="api")
    assert execution.status == "completed", execution.error
    statuses = {s.name: s.status for s in execution.steps.all() if s.kind == "guardrail"}
    assert statuses["Falcon watch (input)"] == "flagged"
    assert statuses["PII (input)"] == "warned"
    untriggered = execute(agent, "Does the invoice need a VAT number?", source="api")
    assert {s.name: s.status for s in untriggered.steps.all()}["Falcon watch (input)"] == "ok"


def test_a_flagged_input_step_reads_as_such_in_the_trace(make_agent, staff_client):
    agent = make_agent(guards=None, tools=())
    guardrail(agent, 0, name="Falcon watch", kind="keywords", action="warn", config={"keywords": ["falcon"]})
    release_now(agent)
    execution = execute(agent, "Does the falcon project need an invoice?", source="api")
    html = staff_client.get(f"/admin/agents/execution/{execution.pk}/change/").content.decode()
    assert 'pg-badge pg-badge-flagged">Flagged' in html
    assert "the input was sent as typed and flagged (warn)" in html
