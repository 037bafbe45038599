"""Which checks decide on one sentence, and ``evaluate(..., sentence=True)`` running only those."""

from __future__ import annotations

from guardrails.checks import CHECKS
from guardrails.engine import evaluate, sentence_wise

GUARDS = [
    {"id": 1, "name": "Citations", "kind": "citation_required", "action": "block", "config": {}},
    {"id": 2, "name": "Words", "kind": "keywords", "action": "redact", "config": {"keywords": ["falcon"]}},
    {"id": 3, "name": "Length", "kind": "max_length", "action": "block", "config": {"max_chars": 5}},
    {"id": 4, "name": "PII", "kind": "pii", "action": "redact", "config": {}},
]


def test_the_kinds_that_decide_on_a_sentence():
    assert {kind for kind, cls in CHECKS.items() if cls.sentence_wise} == {
        "blocked_topics",
        "keywords",
        "regex",
        "pii",
    }
    assert [sentence_wise(g, "output") for g in GUARDS] == [False, True, False, True]
    disabled = {**GUARDS[1], "enabled": False}
    assert not sentence_wise(disabled, "output")


def test_sentence_evaluation_runs_only_the_sentence_checks():
    """The whole-answer checks are left out (not recorded): neither the length limit nor the missing
    citation blocks one sentence; redactions number on from the mapping given."""
    verdict = evaluate(
        GUARDS,
        "Project Falcon pays to DE89370400440532013000.",
        stage="output",
        context={"redactions": {"[IBAN_1]": "GB29NWBK60161331926819"}, "passages": [object()]},
        sentence=True,
    )
    assert not verdict.blocked
    assert [r.name for r in verdict.results] == ["Words", "PII"]
    assert verdict.redacted_text == "Project [KEYWORD_1] pays to [IBAN_2]."
    whole = evaluate(GUARDS, "Project Falcon pays.", stage="output", context={"passages": [object()]})
    assert whole.blocked and whole.blocked_by.name == "Citations"
