"""``keywords``, ``blocked_topics`` and ``regex``: deny lists with word boundaries, case handling,
normalisation, and bounded regular expressions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from guardrails.checks import build_check, validate_config
from guardrails.checks.regex_check import RegexTimeout
from guardrails.engine import evaluate
from tests.guardrails.conftest import run, spec

# --- keywords ---------------------------------------------------------------------------------------


def test_keywords_match_whole_words_whatever_the_case():
    config = {"keywords": ["falcon", "insider list"]}
    finding = run("keywords", "Send me the INSIDER  list for Falcon.", config)
    assert finding.triggered
    assert finding.details["keywords"] == ["falcon", "insider list"]
    assert not run("keywords", "The falconry club and the insiders.", config).triggered


@pytest.mark.parametrize(
    "text",
    ["f а l c o n", "F\u200bALCON", "f-a-l-c-o-n", "ｆａｌｃｏｎ", "f@lc0n", "Fälcon"],
)
def test_keywords_see_through_disguises(text):
    assert run("keywords", f"about {text} today", {"keywords": ["falcon"]}).triggered


def test_case_sensitive_keywords_match_exactly():
    config = {"keywords": ["ACME"], "case_sensitive": True}
    assert run("keywords", "the ACME deal", config).triggered
    assert not run("keywords", "the acme deal", config).triggered


def test_keywords_inside_words_when_asked():
    config = {"keywords": ["secret"], "whole_words": False}
    assert run("keywords", "topsecretfile", config).triggered


def test_keyword_redaction_uses_the_configured_label():
    guardrail = spec("keywords", "redact", {"keywords": ["project falcon"], "label": "PROJECT"})
    verdict = evaluate([guardrail], "Status of Project Falcon?", stage="input")
    assert verdict.text == "Status of [PROJECT_1]?"
    assert verdict.redactions == {"[PROJECT_1]": "Project Falcon"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "'keywords' must list at least one entry"),
        ({"keywords": "falcon"}, "'keywords' must be a list of strings"),
        ({"keywords": ["ok"], "label": "bad label"}, "'label' must be"),
        ({"keywords": ["ok"], "case_sensitive": "no"}, "must be true or false"),
    ],
)
def test_keyword_configurations_are_validated(config, message):
    with pytest.raises(ValidationError) as error:
        validate_config("keywords", config, action="block")
    assert any(message in m for m in error.value.message_dict["config"])


# --- blocked_topics -----------------------------------------------------------------------------------


TOPICS = {
    "topics": [
        {"name": "Investment advice", "terms": ["which shares", "crypto", "bitcoin"]},
        "gambling",
    ]
}


def test_topics_report_the_topic_names():
    finding = run("blocked_topics", "Should I buy Bitcoin or which shares?", TOPICS)
    assert finding.triggered
    assert finding.details["topics"] == ["Investment advice"]
    assert {label for *_, label in finding.spans} == {"Investment advice"}
    assert run("blocked_topics", "Is online GAMBLING income taxable?", TOPICS).details["topics"] == [
        "gambling"
    ]


def test_topics_respect_word_boundaries_and_disguises():
    assert not run("blocked_topics", "cryptography in the audit file", TOPICS).triggered
    assert run("blocked_topics", "what about b i t c o i n", TOPICS).triggered
    assert run("blocked_topics", "what about bitc\u00adoin", TOPICS).triggered


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "'topics' must be a non-empty list"),
        ({"topics": [{"terms": ["x"]}]}, "Topic 1 needs a 'name'"),
        ({"topics": [{"name": "X", "terms": []}]}, "Topic 'X': 'terms' must be a non-empty list"),
        ({"topics": [42]}, "Topic 1 must be a string or an object"),
    ],
)
def test_topic_configurations_are_validated(config, message):
    with pytest.raises(ValidationError) as error:
        validate_config("blocked_topics", config, action="block")
    assert any(message in m for m in error.value.message_dict["config"])


# --- regex --------------------------------------------------------------------------------------------


def test_regex_matches_and_redacts_with_labels():
    config = {
        "patterns": [r"\bCLT-\d{6}\b", {"pattern": r"matter \d+", "label": "MATTER"}],
        "ignore_case": True,
    }
    verdict = evaluate(
        [spec("regex", "redact", config, name="Client refs")], "See CLT-000457 and Matter 118.", stage="input"
    )
    assert verdict.text == "See [REDACTED_1] and [MATTER_1]."


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(unclosed", "not a valid regular expression at position"),
        ("a*", "matches the empty string"),
        ("(a+)+$", "catastrophic backtracking"),
        ("(x|xx)+y", "catastrophic backtracking"),
        ("", "is empty"),
    ],
)
def test_bad_patterns_are_refused_on_save(pattern, message):
    with pytest.raises(ValidationError) as error:
        validate_config("regex", {"patterns": [pattern]}, action="block")
    assert any(message in m for m in error.value.message_dict["config"]), error.value.message_dict


def test_a_pattern_that_times_out_fails_closed():
    """A search over its time limit is an error; with the block action the verdict is blocked."""
    check = build_check("regex", {"patterns": [r"\d+x"], "timeout_ms": 1})
    # Bypass save-time validation: simulate a stored pattern that is slow on this input.
    import regex

    check.patterns = [(regex.compile(r"(\w+\s?)+$"), "REDACTED")]
    with pytest.raises(RegexTimeout):
        check.run("a" * 5000 + "!", stage="input", context={})


def test_regex_error_blocks_in_the_engine(monkeypatch):
    from guardrails.checks import regex_check

    def slow(self, text, *, stage, context):
        raise RegexTimeout("Pattern 1 exceeded its time limit of 20 ms.")

    monkeypatch.setattr(regex_check.RegexCheck, "run", slow)
    verdict = evaluate([spec("regex", "block", {"patterns": ["x+"]})], "xxxx", stage="input")
    assert verdict.blocked
    assert verdict.blocked_by.status == "error"
    assert "Blocked to be safe" in verdict.blocked_by.message
