"""``max_length``, ``citation_required``, ``disclaimer`` and ``json_schema``."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from guardrails.checks import validate_config
from guardrails.checks.max_length import estimate_tokens
from guardrails.engine import evaluate
from tests.guardrails.conftest import run, spec

# --- max_length ---------------------------------------------------------------------------------------


def test_max_chars():
    assert run("max_length", "x" * 10, {"max_chars": 10}).triggered is False
    finding = run("max_length", "x" * 11, {"max_chars": 10})
    assert finding.triggered and "11 characters (limit 10)" in finding.message
    assert finding.spans == [(10, 11, "too_long")]


def test_max_tokens_uses_an_estimate():
    text = "The customer accounts for VAT under the reverse charge. " * 20
    tokens = estimate_tokens(text)
    assert len(text) // 6 <= tokens <= len(text)
    assert run("max_length", text, {"max_tokens": tokens}).triggered is False
    assert run("max_length", text, {"max_tokens": tokens - 1}).triggered is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "Set 'max_chars' or 'max_tokens'"),
        ({"max_chars": 0}, "at least 1"),
        ({"max_tokens": "5"}, "whole number"),
    ],
)
def test_max_length_configuration(config, message):
    with pytest.raises(ValidationError) as error:
        validate_config("max_length", config, action="block")
    assert any(message in m for m in error.value.message_dict["config"])


# --- citation_required --------------------------------------------------------------------------------

PASSAGES = [{"text": "one"}, {"text": "two"}, {"text": "three"}]


def test_citations_are_counted_against_the_passages():
    answer = "The customer accounts for the VAT [1]. The invoice must say 'reverse charge' [2, 3]."
    finding = run(
        "citation_required", answer, {"min_citations": 2}, stage="output", context={"passages": PASSAGES}
    )
    assert not finding.triggered
    assert finding.details["cited"] == [1, 2, 3]


def test_too_few_or_invalid_citations_trigger():
    answer = "The customer accounts for the VAT under the reverse charge [7]."
    finding = run("citation_required", answer, {}, stage="output", context={"passages": PASSAGES})
    assert finding.triggered
    assert "refer to no retrieved passage" in finding.message
    assert finding.details["invalid"] == [7]


def test_uncited_sentences_are_flagged_and_can_trigger():
    answer = "VAT is due from the customer [1]. The supplier does not charge any VAT on this supply."
    context = {"passages": PASSAGES}
    finding = run("citation_required", answer, {}, stage="output", context=context)
    assert not finding.triggered
    uncited = [answer[s:e] for s, e, label in finding.spans if label == "uncited"]
    assert uncited == ["The supplier does not charge any VAT on this supply."]
    assert run("citation_required", answer, {"max_uncited": 0}, stage="output", context=context).triggered


def test_ranges_and_source_markers():
    answer = "See [source 1] and [2-3] for the details of the rule on services."
    finding = run(
        "citation_required", answer, {"min_citations": 3}, stage="output", context={"passages": PASSAGES}
    )
    assert not finding.triggered


def test_without_passages_nothing_is_required_unless_configured():
    answer = "The VAT on €1,000 at 19% is €190.00."
    assert not run("citation_required", answer, {}, stage="output").triggered
    assert run("citation_required", answer, {"require_passages": True}, stage="output").triggered


def test_citation_required_runs_only_on_output():
    guardrail = spec("citation_required", "block", applies_to_input=True, applies_to_output=True)
    assert evaluate([guardrail], "no citations here at all in this sentence", stage="input").results == []


# --- disclaimer ---------------------------------------------------------------------------------------


def test_disclaimer_is_appended_once():
    guardrail = spec("disclaimer", "append", {"text": "This is general information, not tax advice."})
    verdict = evaluate([guardrail], "The rate is 20%.", stage="output")
    assert verdict.text == "The rate is 20%.\n\nThis is general information, not tax advice."
    again = evaluate([guardrail], verdict.text, stage="output")
    assert again.text == verdict.text
    assert not again.results[0].triggered


def test_disclaimer_at_the_start():
    guardrail = spec("disclaimer", "append", {"text": "Draft — for review.", "position": "start"})
    assert evaluate([guardrail], "Body.", stage="output").text == "Draft — for review.\n\nBody."


@pytest.mark.parametrize(
    ("config", "action", "key", "message"),
    [
        ({}, "append", "config", "'text' (the notice to add) is required"),
        ({"text": "x", "position": "middle"}, "append", "config", "'position' must be"),
        ({"text": "x"}, "block", "action", "cannot use the action 'block'"),
    ],
)
def test_disclaimer_configuration(config, action, key, message):
    with pytest.raises(ValidationError) as error:
        validate_config("disclaimer", config, action=action)
    assert any(message in m for m in error.value.message_dict[key])


# --- json_schema --------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["vat_due", "rate"],
    "properties": {"vat_due": {"type": "string"}, "rate": {"type": "number", "maximum": 100}},
}


def test_valid_json_passes_even_inside_a_code_fence():
    answer = '```json\n{"vat_due": "190.00", "rate": 19}\n```'
    assert not run("json_schema", answer, {"schema": SCHEMA}, stage="output").triggered


def test_invalid_json_and_schema_errors_are_reported_with_paths():
    not_json = run("json_schema", "The VAT is 190.", {"schema": SCHEMA}, stage="output")
    assert not_json.triggered and "not valid JSON" in not_json.message
    wrong = run("json_schema", '{"vat_due": 190, "rate": 120}', {"schema": SCHEMA}, stage="output")
    assert wrong.triggered
    assert {e["path"] for e in wrong.details["errors"]} == {"/vat_due", "/rate"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "'schema' must be a non-empty JSON Schema"),
        ({"schema": {"type": "objekt"}}, "is not a valid JSON Schema"),
        ({"schema": SCHEMA, "strip_code_fences": 1}, "must be true or false"),
    ],
)
def test_json_schema_configuration(config, message):
    with pytest.raises(ValidationError) as error:
        validate_config("json_schema", config, action="block")
    assert any(message in m for m in error.value.message_dict["config"])


@pytest.mark.parametrize("kind", ["pii", "prompt_injection", "blocked_topics", "keywords", "regex", "max_length",
                                  "citation_required", "disclaimer", "json_schema"])  # fmt: skip
def test_every_kind_has_a_valid_example_configuration(kind):
    from guardrails.checks import CHECKS

    check = CHECKS[kind]
    validate_config(kind, check.example_config, action=check.default_action)
