"""The checks engine: each kind passes, fails with a reason, and refuses a bad definition."""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from evaluations.checks import Outcome, evaluate, numbers_in, validate_checks

ANSWER = (
    "The customer accounts for the VAT under the reverse charge [1]. VAT on 1,000.00 EUR at 19% is "
    "190.00 EUR [2]."
)
CITATIONS = [
    {"n": 1, "document_id": 7, "document_title": "VAT manual"},
    {"n": 2, "document_id": 9, "document_title": "Rates table"},
]


def step(kind, name, status="ok", **input):
    return SimpleNamespace(kind=kind, name=name, status=status, input=input, output={})


def outcome(**changes) -> Outcome:
    values = {
        "status": "completed",
        "output": ANSWER,
        "citations": CITATIONS,
        "steps": [
            step("guardrail", "PII (input)"),
            step(
                "tool_call",
                "VAT calculator",
                tool="vat-calculator",
                arguments={"amount": "1000.00", "rate": 19},
            ),
        ],
        "latency_ms": 850,
        "cost": Decimal("0.004200"),
    }
    return Outcome(**(values | changes))


def check(definition: dict, **changes):
    (validated,) = validate_checks([definition])
    return evaluate(validated, outcome(**changes))


CASES = [
    # (definition, passes on the default outcome?, a reason fragment)
    ({"kind": "contains", "text": "REVERSE CHARGE"}, True, "contains “REVERSE CHARGE”"),
    ({"kind": "contains", "text": "REVERSE CHARGE", "ignore_case": False}, False, "does not contain"),
    ({"kind": "not_contains", "text": "definitely"}, True, "does not contain"),
    ({"kind": "not_contains", "text": "reverse charge"}, False, "which it must not"),
    ({"kind": "regex", "pattern": r"\b190[.,]00 EUR\b"}, True, "matches"),
    ({"kind": "regex", "pattern": r"^Nothing"}, False, "does not match"),
    ({"kind": "cites_at_least", "count": 2}, True, "cites 2 passage(s)"),
    ({"kind": "cites_at_least", "count": 3}, False, "at least 3 required"),
    ({"kind": "cites_document", "document_title": "vat manual"}, True, "cites “vat manual”"),
    ({"kind": "cites_document", "document_id": 8}, False, "it cites: Rates table, VAT manual"),
    ({"kind": "not_blocked"}, True, "not blocked"),
    ({"kind": "blocked"}, False, "it ended completed"),
    ({"kind": "tool_called", "tool": "VAT calculator"}, True, "called"),
    ({"kind": "tool_called", "tool": "vat-calculator", "arguments": {"rate": 19.0}}, True, "with"),
    ({"kind": "tool_called", "tool": "vat-calculator", "arguments": {"rate": 7}}, False, "but not with"),
    ({"kind": "tool_called", "tool": "iban-validator"}, False, "it called: VAT calculator"),
    ({"kind": "number_within", "value": 190, "tolerance": 0.01}, True, "gives 190.00"),
    ({"kind": "number_within", "value": 1000}, True, "gives 1000.00"),
    ({"kind": "number_within", "value": 200, "tolerance": 5}, False, "it gives: 1000.00, 19, 190.00"),
    ({"kind": "latency_under", "ms": 1000}, True, "850 ms"),
    ({"kind": "latency_under", "ms": 850}, False, "the limit is 850 ms"),
    ({"kind": "cost_under", "amount": "0.01"}, True, "0.0042"),
    ({"kind": "cost_under", "amount": 0.001}, False, "the limit is 0.001"),
]


@pytest.mark.parametrize(
    ("definition", "passes", "reason"), CASES, ids=[f"{c[0]['kind']}-{c[1]}" for c in CASES]
)
def test_each_kind_passes_or_fails_with_a_reason(definition, passes, reason):
    passed, why = check(definition)
    assert passed is passes and reason in why, why


def test_blocked_reads_the_guardrail_steps():
    steps = [step("guardrail", "PII (input)"), step("guardrail", "No crypto (input)", status="blocked")]
    assert check({"kind": "blocked"}, status="blocked", steps=steps, output="")[0]
    assert check({"kind": "blocked", "guardrail": "no crypto"}, status="blocked", steps=steps)[0]
    passed, why = check({"kind": "blocked", "guardrail": "PII"}, status="blocked", steps=steps)
    assert not passed and "blocked by No crypto" in why
    passed, why = check({"kind": "not_blocked"}, status="blocked", steps=steps)
    assert not passed and why == "The run was blocked by No crypto."
    assert check({"kind": "not_blocked", "guardrail": "PII"}, status="blocked", steps=steps)[0]


def test_json_schema_validates_the_answer():
    schema = {"type": "object", "required": ["vat_due"], "properties": {"vat_due": {"type": "number"}}}
    assert check({"kind": "json_schema", "schema": schema}, output='```json\n{"vat_due": 190}\n```')[0]
    passed, why = check({"kind": "json_schema", "schema": schema}, output='{"vat_due": "190"}')
    assert not passed and why.startswith("The answer does not match the schema at /vat_due: '190' is not")
    passed, why = check({"kind": "json_schema", "schema": schema})
    assert not passed and why.startswith("The answer is not JSON")


def test_unknown_cost_and_latency_fail_plainly():
    assert check({"kind": "cost_under", "amount": 1}, cost=None) == (
        False,
        "The run's cost is unknown (its provider reported no usage).",
    )
    assert check({"kind": "latency_under", "ms": 1}, latency_ms=None)[0] is False


def test_numbers_are_read_as_written():
    assert numbers_in("1,000.50 and 1.000,50 and 1000.5 and 2,5 and 1.234 and -3") == [
        Decimal("1000.50"), Decimal("1000.50"), Decimal("1000.5"), Decimal("2.5"), Decimal("1234"), Decimal("-3"),
    ]  # fmt: skip


BAD = [
    ("not a list", "The checks must be a list"),
    ([{"kind": "sentiment"}], 'Check 1: unknown kind "sentiment"; the kinds are blocked, cites_at_least'),
    (
        [{"kind": "rubric", "rubric": "Is it polite?", "min_agreement": 1.5}],
        "Check 1 (rubric): 'min_agreement' must be a share from 0 to 1 (0.8 = 80 %).",
    ),
    (["contains"], "Check 1: must be an object with a 'kind'."),
    ([{"kind": "contains"}], "Check 1 (contains): 'text' must be a non-empty text."),
    (
        [{"kind": "contains", "text": "x", "ignore_case": "yes"}],
        "Check 1 (contains): 'ignore_case' must be true or false.",
    ),
    ([{"kind": "contains", "text": "x", "colour": 1}], "Check 1 (contains): unknown setting(s) colour"),
    (
        [{"kind": "regex", "pattern": "(unclosed"}],
        "Check 1 (regex): The pattern is not a valid regular expression",
    ),
    ([{"kind": "regex", "pattern": "(a+)+$"}], "Check 1 (regex): The pattern takes too long on some inputs"),
    ([{"kind": "cites_at_least", "count": 0}], "'count' must be a whole number of at least 1."),
    ([{"kind": "cites_at_least", "count": True}], "'count' must be a whole number of at least 1."),
    ([{"kind": "cites_document"}], "Give either 'document_id' or 'document_title'."),
    ([{"kind": "cites_document", "document_id": 1, "document_title": "x"}], "Give either"),
    ([{"kind": "blocked", "guardrail": ""}], "'guardrail' must be a non-empty text."),
    ([{"kind": "tool_called", "tool": "x", "arguments": [1]}], "'arguments' must be an object"),
    (
        [{"kind": "json_schema", "schema": {"type": "nonsense"}}],
        "'schema' is not a valid JSON Schema at type",
    ),
    ([{"kind": "json_schema"}], "'schema' must be a non-empty JSON Schema object."),
    ([{"kind": "number_within", "value": "abc"}], "'value' must be a number."),
    ([{"kind": "number_within", "value": 1, "tolerance": -1}], "'tolerance' must be a number of at least 0."),
    ([{"kind": "latency_under", "ms": 0}], "'ms' must be a whole number of milliseconds"),
    ([{"kind": "cost_under", "amount": "lots"}], "'amount' must be a number."),
]


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_definitions_are_refused_naming_the_check(raw, message):
    with pytest.raises(ValidationError) as caught:
        validate_checks(raw)
    assert any(message in m for m in caught.value.messages), caught.value.messages


def test_every_problem_is_listed_with_its_position():
    with pytest.raises(ValidationError) as caught:
        validate_checks([{"kind": "contains", "text": "ok"}, {"kind": "contains"}, {"kind": "latency_under"}])
    assert [m.split(":")[0] for m in caught.value.messages] == [
        "Check 2 (contains)",
        "Check 3 (latency_under)",
    ]


def test_a_regex_search_has_a_time_limit():
    """A pattern that slipped past the save-time probes still cannot hold a worker: the search stops
    at its time limit and the check fails saying so."""
    from evaluations.checks import regex_match

    slow = {"pattern": r"(x+x+)+y", "ignore_case": False}
    started = time.monotonic()
    passed, why = regex_match(slow, outcome(output="x" * 5000))
    assert time.monotonic() - started < 2
    assert not passed and "took longer than 100 ms" in why
