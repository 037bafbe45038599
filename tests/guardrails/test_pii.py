"""The ``pii`` check: identifiers confirmed by their check digits, typed placeholders, restore."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn

from guardrails.checks import build_check, validate_config
from guardrails.engine import evaluate, restore
from tests.guardrails.conftest import spec

POSITIVES = [
    ("Please send it to jane.doe@example.co.uk today.", "email", "jane.doe@example.co.uk"),
    ("Reach peter [at] acme-holdings [dot] com", "email", "peter [at] acme-holdings [dot] com"),
    ("Call me on +44 20 7946 0958 after 3pm.", "phone", "+44 20 7946 0958"),
    ("The US office is (212) 555-0199.", "phone", "(212) 555-0199"),
    ("Her mobile is 07911 123456.", "phone", "07911 123456"),
    ("Pay into GB82 WEST 1234 5698 7654 32 please.", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN DE89370400440532013000.", "iban", "DE89370400440532013000"),
    ("lower case: gb82west12345698765432", "iban", "gb82west12345698765432"),
    ("Card 4111 1111 1111 1111, expiry 12/27.", "card", "4111 1111 1111 1111"),
    ("Amex 3782 822463 10005 on file", "card", "3782 822463 10005"),
    ("His SSN is 536-22-8726.", "us_ssn", "536-22-8726"),
    ("SSN 536228726 on the W-4", "us_ssn", "536228726"),
    ("Our EIN is 12-3456789.", "us_ein", "12-3456789"),
    ("NI number AB 12 34 56 C", "uk_nino", "AB 12 34 56 C"),
    ("My UTR is 1955839661.", "uk_utr", "1955839661"),
    ("Supplier VAT DE136695976 on the invoice", "eu_vat", "DE136695976"),
    ("VAT reg. FR 40 303 265 045", "eu_vat", "FR 40 303 265 045"),
    ("UK VAT GB 980 7806 84 on the receipt", "eu_vat", "GB 980 7806 84"),
]

BENIGN = [
    "Invoice INV-2024-000123 dated 31/03/2024 totals EUR 12,345.67 including 20% VAT.",
    "Company number 01234567 filed its confirmation statement on 14/02/2024.",
    "Purchase order PO 4500012345 was matched to goods receipt 5000067890.",
    "Journal entry JE-2024-07-0193 posted on 2024-07-19 reversed the accrual of 15,000.00.",
    "Sort code 20-00-00; account balance £18,204.55 at year end.",
    "Check the figure of 2,147,483,647 in the extract.",
    "Ledger codes 4010-200-3000 and 5010-100-2000.",
    "Line 16 of Schedule C shows interest of $1,234; the fiscal year ends on 9/30.",
    "The ISIN IE00B4L5Y983 fund and LEI 5493001KJTIIGC8Y1R12.",
    "A random nine-digit reference 123456789 and ten-digit reference 1234567890.",
    "Card-shaped but fails Luhn: 4111 1111 1111 1112.",
    "IBAN-shaped with a wrong checksum: GB00 WEST 1234 5698 7654 32.",
    "SSN-shaped but never issued: 000-12-3456 and 666-12-3456.",
    "Amounts 12 345 678,90 and 1.234.567,89 in European format.",
]


@pytest.mark.parametrize(("text", "entity", "value"), POSITIVES)
def test_each_entity_is_found_with_its_span(pii, text, entity, value):
    """Each kind of identifier is found, labelled, and its span covers exactly the value."""
    found = pii.find(text)
    assert [(text[s:e], label) for s, e, label in found] == [(value, entity)]


@pytest.mark.parametrize("text", BENIGN)
def test_numbers_that_are_not_identifiers_are_not_flagged(pii, text):
    """Amounts, dates, reference codes and numbers with a wrong check digit do not fire."""
    assert pii.find(text) == []


def test_bare_numbers_need_a_keyword_when_their_shape_says_little(pii):
    """A valid UTR or EIN without 'UTR'/'EIN' before it is not flagged; with the keyword it is."""
    assert pii.find("Reference 1955839661 on the letter") == []
    assert pii.find("Batch 12-3456789") == []
    assert [e for *_, e in pii.find("UTR: 1955839661")] == ["uk_utr"]
    assert [e for *_, e in pii.find("EIN 12-3456789")] == ["us_ein"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "IBAN ＧＢ８２ ＷＥＳＴ １２３４ ５６９８ ７６５４ ３２",
            "ＧＢ８２ ＷＥＳＴ １２３４ ５６９８ ７６５４ ３２",
        ),
        ("card 4111\u200b1111\u200b1111\u200b1111 ok", "4111\u200b1111\u200b1111\u200b1111"),
        ("mail jane\u200b.doe@example.com", "jane\u200b.doe@example.com"),
    ],
)
def test_unicode_disguises_are_seen_through(pii, text, value):
    """Fullwidth digits and zero-width characters inside an identifier do not hide it; the span is
    reported in the original text."""
    found = pii.find(text)
    assert len(found) == 1
    start, end, _ = found[0]
    assert text[start:end] == value


def test_entity_list_and_allow_list_are_honoured():
    """Only the configured entities are looked for, and allowed values are never flagged."""
    check = build_check("pii", {"entities": ["iban"], "allow": ["DE89 3704 0044 0532 0130 00"]})
    text = "Mail a@b.com, pay GB82WEST12345698765432, our own account DE89370400440532013000."
    assert [(text[s:e], k) for s, e, k in check.find(text)] == [("GB82WEST12345698765432", "iban")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"entities": ["passport"]}, "Unknown entity: passport"),
        ({"entities": []}, "must list at least one entry"),
        ({"entities": "iban"}, "must be a list of strings"),
        ({"phone_regions": ["XX"]}, "Unknown telephone region"),
        ({"colour": "red"}, "Unknown setting(s): colour"),
    ],
)
def test_invalid_configurations_are_explained(config, message):
    with pytest.raises(ValidationError) as error:
        validate_config("pii", config, action="redact")
    assert any(message in m for m in error.value.message_dict["config"])


def test_append_is_not_a_pii_action():
    with pytest.raises(ValidationError) as error:
        validate_config("pii", {}, action="append")
    assert "action" in error.value.message_dict


def test_redaction_and_restore_round_trip():
    """Input redaction gives typed placeholders; the output stage restores the user's own values."""
    guardrails = [spec("pii", "redact", applies_to_input=True, applies_to_output=True)]
    text = "Refund GB82 WEST 1234 5698 7654 32 and mail jane@example.com, or jane@example.com again."
    first = evaluate(guardrails, text, stage="input")
    assert first.text == "Refund [IBAN_1] and mail [EMAIL_1], or [EMAIL_1] again."
    assert first.redactions == {"[IBAN_1]": "GB82 WEST 1234 5698 7654 32", "[EMAIL_1]": "jane@example.com"}
    answer = "I will refund [IBAN_1]; confirmation goes to [email_1]."
    out = evaluate(
        guardrails, answer, stage="output", context={"redactions": first.redactions, "restore": True}
    )
    assert out.text == "I will refund GB82 WEST 1234 5698 7654 32; confirmation goes to jane@example.com."
    assert out.redacted_text == answer
    assert restore(first.text, first.redactions) == text


def test_numbering_continues_across_stages_and_new_output_values_stay_redacted():
    guardrails = [spec("pii", "redact", applies_to_input=True, applies_to_output=True)]
    first = evaluate(guardrails, "Pay GB82WEST12345698765432", stage="input")
    out = evaluate(
        guardrails,
        "Use [IBAN_1], not DE89370400440532013000.",
        stage="output",
        context={"redactions": first.redactions, "restore": True},
    )
    assert out.text == "Use GB82WEST12345698765432, not [IBAN_2]."
    assert out.new_redactions == ["[IBAN_2]"]
    assert out.redactions["[IBAN_2]"] == "DE89370400440532013000"


def test_verdict_dict_never_contains_the_originals():
    guardrails = [spec("pii", "redact")]
    verdict = evaluate(guardrails, "SSN 536-22-8726, card 4111111111111111", stage="input")
    dumped = repr(verdict.to_dict())
    assert "536-22-8726" not in dumped and "4111111111111111" not in dumped
    assert verdict.to_dict()["redactions"] == ["[CARD_1]", "[SSN_1]"]


# --- Property: redaction never leaves a detected identifier behind ---------------------------------


def _iban(country_bban: tuple[str, str]) -> str:
    country, bban = country_bban
    return country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban


def _card(body: str) -> str:
    return body + luhn.calc_check_digit(body)


identifiers = st.one_of(
    st.tuples(st.just("GB"), st.from_regex(r"\A[A-Z]{4}[0-9]{14}\Z")).map(_iban),
    st.tuples(st.just("DE"), st.from_regex(r"\A[0-9]{18}\Z")).map(_iban),
    st.from_regex(r"\A4[0-9]{14}\Z").map(_card),
    st.from_regex(r"\A5[1-5][0-9]{13}\Z").map(_card),
    st.from_regex(r"\A[a-z]{1,8}\.[a-z]{1,8}@[a-z]{2,10}\.(com|org|co\.uk)\Z"),
    st.from_regex(r"\A[1-5][0-9]{2}-[1-9][0-9]-[1-9][0-9]{3}\Z"),
    st.just("+44 20 7946 0958"),
)
filler = st.text(
    alphabet=st.sampled_from(list("abcdefghij klmnopqrstuvwxyz0123456789.,;:-()/€£%\n")), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(filler, identifiers), min_size=1, max_size=4), filler)
def test_redaction_never_leaves_a_detected_identifier(pairs, tail):
    """Whatever surrounds them, every identifier found is replaced, and nothing detectable remains."""
    check = build_check("pii", {})
    text = "".join(f"{before} {value} " for before, value in pairs) + tail
    found = check.find(text)
    verdict = evaluate([spec("pii", "redact")], text, stage="input")
    assert check.find(verdict.text) == []
    for start, end, _ in found:
        assert text[start:end] not in verdict.text
    assert restore(verdict.text, verdict.redactions) == text


def test_other_national_phone_formats_count_when_announced(pii):
    """A French or German national number is flagged after a telephone keyword, not on its own."""
    assert [e for *_, e in pii.find("Tél. 01 42 68 53 00")] == ["phone"]
    assert [e for *_, e in pii.find("Ruf mich an: 030 901820")] == ["phone"]
    assert pii.find("Order number 0301234567 shipped") == []
    assert pii.find("Reference numbers 20241231-0001 to 20241231-0450") == []


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("+44 20 7946 0958 4111 1111 1111 1111", ["phone", "card"]),
        ("ref 001-01-0001 12000000 00 and 020 7946 0958", ["us_ssn", "phone"]),
        ("SSN 536-22-8726 020 7946 0958", ["us_ssn", "phone"]),
        ("[SSN_1] 536228726", []),
    ],
)
def test_identifiers_next_to_other_numbers_are_all_found(pii, text, entities):
    """A number that fails its check does not swallow the identifier after it, and a placeholder is not
    a keyword ('[SSN_1]' does not announce a bare nine-digit number)."""
    assert [e for *_, e in pii.find(text)] == entities


def test_national_numbers_must_be_written_as_the_region_writes_them(pii):
    """'1200 000000' is a valid GB number only when written with its trunk prefix: 01200 000000."""
    assert pii.find("Account 1200 000000") == []
    assert [e for *_, e in pii.find("Tel 01200 000000")] == ["phone"]


KNOWN = st.sampled_from(
    [
        "GB82 WEST 1234 5698 7654 32",
        "4111 1111 1111 1111",
        "536-22-8726",
        "jane@example.com",
        "+44 20 7946 0958",
        "DE136695976",
        "AB 12 34 56 C",
        "UTR 1955839661",
        "EIN 12-3456789",
        "(212) 555-0199",
        "07911 123456",
        "ＧＢ８２ＷＥＳＴ１２３４５６９８７６５４３２",
        "4111\u200b1111\u200b1111\u200b1111",
    ]
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), KNOWN), max_size=8))
def test_redacting_any_text_leaves_nothing_detectable(parts):
    """Arbitrary text (any Unicode) mixed with identifiers in many formats: after redaction nothing is
    detected, and restoring gives the text back."""
    text = " ".join(parts)
    verdict = evaluate([spec("pii", "redact")], text, stage="input")
    assert build_check("pii", {}).find(verdict.text) == []
    assert restore(verdict.text, verdict.redactions) == text
