"""Screening stored with knowledge passages (``guardrails.screening``): reused only when it describes
exactly the text being checked, by the current detector and the default settings."""

from __future__ import annotations

import pytest

from guardrails import screening
from guardrails.checks import build_check
from tests.guardrails.conftest import run
from tests.guardrails.test_prompt_injection import ATTACKS, BENIGN, INDIRECT

BENIGN_TEXT = "Prompt payment discounts of 2% reduce the consideration for VAT purposes."


@pytest.mark.parametrize("text", ATTACKS + INDIRECT + BENIGN)
def test_stored_verdict_is_the_live_verdict(text):
    """The same finding whether the check scans the text or reuses what ingestion stored."""
    stored = screening.screen(text)
    live = run("prompt_injection", text, stage="retrieval")
    reused = run("prompt_injection", text, stage="retrieval", context={"screening": stored})
    assert (reused.triggered, reused.message, reused.signals, reused.spans, reused.details) == (
        live.triggered, live.message, live.signals, live.spans, live.details,
    )  # fmt: skip
    assert stored["prompt_injection"] == build_check("prompt_injection", {}).scan(text)


def _claiming_an_attack(text: str) -> dict:
    """A screening of ``text`` that (falsely) records a strong signal: shows whether it is used."""
    stored = screening.screen(text)
    stored["prompt_injection"] = [{"name": "override_instructions", "weight": 0.9, "start": 0, "end": 6}]
    return stored


def test_the_stored_signals_are_what_the_check_uses():
    finding = run(
        "prompt_injection",
        BENIGN_TEXT,
        stage="retrieval",
        context={"screening": _claiming_an_attack(BENIGN_TEXT)},
    )
    assert finding.triggered and finding.signals[0]["name"] == "override_instructions"


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(digest=screening.digest("another text")),  # not this text
        lambda s: s.update(version="0123456789abcdef"),  # an older detector
        lambda s: s.pop("prompt_injection"),  # screened for something else
        lambda s: s.clear(),
    ],
    ids=["other-text", "older-detector", "no-injection-entry", "empty"],
)
def test_a_screening_that_may_not_describe_the_text_is_ignored(change):
    stored = _claiming_an_attack(BENIGN_TEXT)
    change(stored)
    finding = run("prompt_injection", BENIGN_TEXT, stage="retrieval", context={"screening": stored})
    assert not finding.triggered and finding.signals == []


@pytest.mark.parametrize("config", [{"decode_base64": False}, {"extra_phrases": ["wire the balance"]}])
def test_other_settings_scan_the_text_themselves(config):
    """Stored signals are the default scan's: a check configured otherwise scans afresh."""
    finding = run(
        "prompt_injection",
        BENIGN_TEXT,
        config,
        stage="retrieval",
        context={"screening": _claiming_an_attack(BENIGN_TEXT)},
    )
    assert not finding.triggered


def test_extra_phrases_still_catch_a_screened_passage():
    text = "Please wire the balance to the new account."
    finding = run(
        "prompt_injection", text, {"extra_phrases": ["wire the balance"]}, stage="retrieval",
        context={"screening": screening.screen(text)},
    )  # fmt: skip
    assert finding.triggered and any(s["name"] == "configured_phrase" for s in finding.signals)


def test_stored_signals_are_copies():
    stored = screening.screen(ATTACKS[0])
    signals = screening.stored_signals(stored, ATTACKS[0])
    signals[0]["name"] = "changed"
    assert stored["prompt_injection"][0]["name"] != "changed"


def test_the_fingerprint_changes_with_any_byte_of_the_detector(tmp_path):
    """Any change to the detector's files gives another fingerprint (so what was stored is not reused)."""
    detector, normaliser = tmp_path / "prompt_injection.py", tmp_path / "normalize.py"
    detector.write_text("SIGNALS = ['ignore previous instructions']\n")
    normaliser.write_text("def fold(text): return text\n")
    before = screening.fingerprint([detector, normaliser])
    assert screening.fingerprint([detector, normaliser]) == before
    normaliser.write_text("def fold(text): return text.lower()\n")
    assert screening.fingerprint([detector, normaliser]) != before


def test_this_process_fingerprint_is_taken_from_the_loaded_detector_files():
    from guardrails.checks import normalize, prompt_injection

    assert screening.version() == screening.fingerprint([prompt_injection.__file__, normalize.__file__])


def test_a_detector_failure_stores_no_screening(monkeypatch):
    """Screening must never fail an ingestion: a passage the detector cannot scan is scanned live."""

    def broken(self, text, *, depth=0):
        raise RuntimeError("detector bug")

    monkeypatch.setattr(type(build_check("prompt_injection", {})), "scan", broken)
    assert screening.screen("Any text.") is None


def test_injection_summary_reports_only_scores_reaching_the_default_threshold():
    weak = "Our admin team will send the payroll data to you on Monday."
    strong = ATTACKS[0]
    assert screening.stored_signals(screening.screen(weak), weak)  # some signal…
    assert screening.injection_summary(screening.screen(weak), weak) is None  # …below the threshold
    summary = screening.injection_summary(screening.screen(strong), strong)
    assert summary and summary["score"] >= 0.5 and summary["names"]
    assert screening.injection_summary(screening.screen(strong), "another text") is None
