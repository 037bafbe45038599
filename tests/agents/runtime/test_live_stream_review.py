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
from tests.agents.runtime.test_live_stream import ANSWER, QUESTION, slow_agent  # noqa: F401 (fixture)
from tests.factories import ModelProviderFactory
from tests.support.slow_model import assign_demo_guardrails

pytestmark = pytest.mark.django_db

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
    events = list(execute_stream(agent, QUESTION, source="api"))
    assert persona_iban not in json.dumps(model.bodies)
    deltas = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    assert persona_iban not in deltas and model_iban not in deltas
    assert "[IBAN_2]" in deltas
    final = events[-1]["data"]
    assert final["status"] == "completed", final["error"]
    assert _shown(events) == final["output"]
