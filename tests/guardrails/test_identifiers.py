"""``guardrails.identifiers.identifier_spans``: where the chunker must not cut — every identifier a PII
guardrail of any configuration finds, with the keyword its kind needs."""

from __future__ import annotations

import pytest

from guardrails.checks import build_check
from guardrails.identifiers import identifier_spans
from tests.agents.runtime.test_privacy_boundary import VALUES, holding


def _covered(span, spans) -> bool:
    return any(start <= span[0] and span[1] <= end for start, end in spans)


@pytest.mark.parametrize("place", list(VALUES))
def test_every_identifier_the_default_check_finds_is_protected(place):
    text = holding(place)
    spans = identifier_spans(text)
    found = build_check("pii", {}).find(text)
    assert len(found) == len(VALUES[place])
    assert all(_covered((start, end), spans) for start, end, _ in found)


def test_the_keyword_a_number_needs_is_protected_with_it():
    """Cut after "SSN:", "EIN" or "UTR", the number alone would not be recognised: the span starts at
    the keyword. A number that needs none starts its own span."""
    gap = " and then a long stretch of words without numbers, "
    written = ["SSN: 536228726", "EIN 12-3456789", "UTR 1955839661", "4111 1111 1111 1111"]
    text = "Client " + gap.join(written) + "."
    assert [text[start:end] for start, end in identifier_spans(text)] == written


def test_any_run_of_digits_is_protected_with_the_keywords_before_it():
    """Amounts, references and numbers of any telephone region are runs of digits a cut avoids; the
    keywords of every kind within reach are kept with them (any could make a check count them)."""
    text = "Ref. 2024 000 042 of 1.000.000,00 EUR; SSN or tel. 0293744000 please."
    spans = [text[start:end] for start, end in identifier_spans(text)]
    assert spans == ["2024 000 042", "1.000.000", "SSN or tel. 0293744000"]


def test_telephone_numbers_of_a_region_a_guardrail_may_choose_are_protected():
    """A guardrail may list any of phonenumbers' regions (up to 50): an unannounced Australian number is
    found by a guardrail configured for AU, though not by the default configuration (GB, US); it is
    protected as a run of digits."""
    text = "The Sydney office is on (02) 9374 4000 for the audit."
    assert build_check("pii", {}).find(text) == []
    found = build_check("pii", {"phone_regions": ["AU"]}).find(text)
    assert [text[s:e] for s, e, _ in found] == ["(02) 9374 4000"]
    assert _covered(found[0][:2], identifier_spans(text))


def test_text_without_identifiers_has_no_spans():
    assert (
        identifier_spans("The reverse charge applies to B2B services from 1 January 2010, § 13b UStG.") == []
    )
