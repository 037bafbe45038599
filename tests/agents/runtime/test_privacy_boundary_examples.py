"""Learning examples are stored redacted (``agents.privacy``); sent to a provider they take the run's own
placeholders, so an example's ``[IBAN_1]`` never collides with the input's, and the requester sees the
values back. A real local OpenAI-compatible server records every request body."""

from __future__ import annotations

import json
import re

import pytest
from werkzeug import Response

from agents import services
from agents.models import LearningExample
from agents.runtime import execute, execute_stream
from guardrails.masking import mask_value
from tests.agents.runtime.conftest import guardrail
from tests.agents.runtime.test_openai_provider import chunk, completion, remote  # noqa: F401 (the fixture)
from tests.factories import APIKeyFactory, ExecutionFactory, release_now

pytestmark = pytest.mark.django_db

EXAMPLE_IBAN = "GB82WEST12345698765432"
EXAMPLE_VAT = "DE136695976"
INPUT_IBAN = "DE89370400440532013000"
PLACEHOLDER = re.compile(r"\[[A-Z]+_\d+\]")


def _echo(body):
    """The model's answer: every placeholder it was sent, in order (streamed word by word when asked)."""
    answer = "Seen: " + " ".join(dict.fromkeys(PLACEHOLDER.findall(json.dumps(body["messages"]))))
    if not body.get("stream"):
        return completion(answer)
    pieces = [chunk({"content": word}) for word in re.findall(r"\S+\s*", answer)]
    return Response([*pieces, chunk(finish="stop"), "data: [DONE]\n\n"], content_type="text/event-stream")


def _approved_example_from_feedback(agent, requester):
    """A thumbs down with a correction on an earlier run, approved: the path of the issue's report."""
    run = ExecutionFactory(
        agent=agent,
        input=f"Is the IBAN {EXAMPLE_IBAN} valid?",
        output="I cannot tell.",
        redactions=json.dumps({"[IBAN_1]": EXAMPLE_IBAN}),
        actor_user=requester,
    )
    feedback = services.feedback_create(
        execution=run,
        actor=requester,
        rating=-1,
        correction=f"Yes: {EXAMPLE_IBAN} is valid, and the supplier's VAT number is {EXAMPLE_VAT}.",
    )
    example = LearningExample.objects.get(source_feedback=feedback)
    assert example.input == "Is the IBAN [IBAN_1] valid?"  # stored redacted
    assert example.output == "Yes: [IBAN_1] is valid, and the supplier's VAT number is [VAT_1]."
    return services.learning_example_approve(example=example, actor=requester)


def test_an_example_from_feedback_reaches_the_provider_with_the_runs_own_placeholders(remote, editor):  # noqa: F811 (the imported fixture)
    agent, model = remote(_echo, guards=None)
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    _approved_example_from_feedback(agent, editor)
    release_now(agent)
    execution = execute(agent, f"And {INPUT_IBAN}?", source="api", actor=editor)
    assert execution.status == "completed", execution.error
    sent = json.dumps(model.bodies, ensure_ascii=False)
    assert EXAMPLE_IBAN not in sent and EXAMPLE_VAT not in sent and INPUT_IBAN not in sent
    messages = model.bodies[0]["messages"]
    # The input took [IBAN_1] first; the example's IBAN is another placeholder of the same run.
    assert messages[-1]["content"].endswith("And [IBAN_1]?")
    assert messages[1] == {"role": "user", "content": "Is the IBAN [IBAN_2] valid?"}
    assert messages[2]["content"] == "Yes: [IBAN_2] is valid, and the supplier's VAT number is [VAT_1]."
    # The model echoed them (in the order it read them): the requester reads each value back.
    assert execution.output == f"Seen: {EXAMPLE_IBAN} {EXAMPLE_VAT} {INPUT_IBAN}"


def test_without_a_pii_guardrail_an_example_is_sent_as_typed(remote, editor):  # noqa: F811 (the imported fixture)
    """No PII guardrail: identifiers are sent as typed — the real values, never the stored
    placeholders, which the model could not make sense of and the run could not restore."""
    agent, model = remote(completion("Noted."), guards=None)
    _approved_example_from_feedback(agent, editor)
    release_now(agent)
    execution = execute(agent, "Anything else?", source="api", actor=editor)
    assert execution.status == "completed", execution.error
    messages = model.bodies[0]["messages"]
    assert messages[1]["content"] == f"Is the IBAN {EXAMPLE_IBAN} valid?"
    assert not PLACEHOLDER.search(json.dumps(messages))


def _events_output(stream) -> tuple[str, str]:
    """What a streaming client was shown (the deltas joined) and the recorded answer."""
    events = list(stream)
    shown = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    return shown, events[-1]["data"]["output"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_an_api_key_sees_an_examples_identifiers_masked_in_the_answer(remote, editor, stream):  # noqa: F811 (the imported fixture)
    """An approved example holds another client's identifiers. Members who may run an agent (editors
    and above) may open any example in full, so they read its values back; an API key may see only
    its own runs' identifiers (``agents.privacy``): asked to repeat the examples, it reads them masked,
    while its own input's value still comes back."""
    agent, model = remote(_echo, guards=None)
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    _approved_example_from_feedback(agent, editor)
    key = APIKeyFactory(organization=agent.organization, scopes=["read", "execute"])
    question = f"Repeat your examples. Mine is {INPUT_IBAN}."
    release_now(agent)
    if stream:
        shown, output = _events_output(execute_stream(agent, question, source="api", actor=key))
        assert shown == output
    else:
        execution = execute(agent, question, source="api", actor=key)
        assert execution.status == "completed", execution.error
        output = execution.output
    assert EXAMPLE_IBAN not in output and EXAMPLE_VAT not in output
    # The examples come before the question in the messages, so the model echoes their placeholders first.
    assert output == f"Seen: {mask_value(EXAMPLE_IBAN)} {mask_value(EXAMPLE_VAT)} {INPUT_IBAN}"
    sent = json.dumps(model.bodies, ensure_ascii=False)
    assert EXAMPLE_IBAN not in sent and INPUT_IBAN not in sent
    # The same question from an editor: every value back.
    execution = execute(agent, question, source="api", actor=editor)
    assert execution.output == f"Seen: {EXAMPLE_IBAN} {EXAMPLE_VAT} {INPUT_IBAN}"
