"""``guardrails.masking``: identifiers shown masked (``DE89 •••• 3000``) and texts redacted for storage."""

from __future__ import annotations

import pytest

from guardrails import masking
from guardrails.checks.pii import ENTITIES
from guardrails.masking import HIDDEN, mask_data, mask_text, mask_value, redact_texts

#: One value of each supported kind, in a sentence that announces it, and its masked form.
CASES = {
    "email": ("Mail anna.schmidt@example.com today.", "Mail a••••@••••.com today."),
    "iban": ("IBAN DE89 3704 0044 0532 0130 00 please.", "IBAN DE89 •••• 3000 please."),
    "eu_vat": ("VAT number DE136695976.", "VAT number DE •••• 76."),
    "card": ("Card 4111 1111 1111 1111 on file.", "Card 4111 •••• 1111 on file."),
    "us_ssn": ("SSN 536-22-8726.", "SSN 53 •••• 26."),
    "us_ein": ("EIN 12-3456789.", "EIN 12 •••• 89."),
    "uk_nino": ("NI number AB 12 34 56 C.", "NI number AB •••• 6C."),
    "uk_utr": ("UTR 1955839661.", "UTR 19 •••• 61."),
    "phone": ("Call +44 20 7946 0958.", "Call 44 •••• 58."),
}


def test_every_kind_is_covered():
    assert set(CASES) == set(ENTITIES)


@pytest.mark.parametrize("entity", list(CASES))
def test_each_kind_is_masked(entity):
    text, masked = CASES[entity]
    assert mask_text(text) == masked


def test_the_forms_by_length():
    """16 or more letters and digits: 4 + 4 kept; 8 to 15: 2 + 2; fewer: nothing."""
    assert mask_value("GB82 WEST 1234 5698 7654 32") == f"GB82 {HIDDEN} 5432"
    assert mask_value("de136695976") == f"DE {HIDDEN} 76"
    assert mask_value("1234-5678") == f"12 {HIDDEN} 78"
    assert mask_value("1234567") == HIDDEN
    assert mask_value("x@mandant.de", "email") == f"x{HIDDEN}@{HIDDEN}.de"
    assert mask_value("nobody@localhost") == f"n{HIDDEN}@{HIDDEN}"


def test_text_without_identifiers_is_unchanged():
    text = "VAT at 19 % on 1.000,00 EUR is 190,00 EUR (§ 13b UStG), invoice 2024-001."
    assert mask_text(text) == text
    assert mask_text("") == ""


def test_known_values_are_masked_where_the_detectors_do_not_find_them():
    """A value the object's own mapping knows (found by a guardrail configured otherwise) is masked too."""
    text = "Client reference ZX-99-4411-ACME, IBAN DE89370400440532013000."
    assert mask_text(text) == "Client reference ZX-99-4411-ACME, IBAN DE89 •••• 3000."
    assert mask_text(text, known=["ZX-99-4411-ACME"]) == "Client reference ZX •••• ME, IBAN DE89 •••• 3000."


def test_structures_are_masked_string_by_string():
    data = {"messages": [{"content": "IBAN DE89370400440532013000"}], "n": 3, "ok": True}
    assert mask_data(data) == {"messages": [{"content": "IBAN DE89 •••• 3000"}], "n": 3, "ok": True}


def test_redaction_numbers_placeholders_across_the_texts():
    (question, answer), mapping = redact_texts(
        [
            "Is DE89370400440532013000 valid? Mail anna@example.com",
            "Yes, DE89370400440532013000 is valid; GB82WEST12345698765432 too.",
        ]
    )
    assert question == "Is [IBAN_1] valid? Mail [EMAIL_1]"
    assert answer == "Yes, [IBAN_1] is valid; [IBAN_2] too."
    assert mapping == {
        "[IBAN_1]": "DE89370400440532013000",
        "[EMAIL_1]": "anna@example.com",
        "[IBAN_2]": "GB82WEST12345698765432",
    }


def test_redaction_keeps_the_kind_of_known_values():
    """Values an execution's mapping knows keep their label, even when the detectors miss them."""
    (text,), mapping = redact_texts(
        ["Call 01 42 68 53 00 about DE136695976."], known={"[PHONE_3]": "01 42 68 53 00"}
    )
    assert text == "Call [PHONE_1] about [VAT_1]."
    assert mapping == {"[PHONE_1]": "01 42 68 53 00", "[VAT_1]": "DE136695976"}


def test_nothing_to_redact():
    assert redact_texts(["No identifiers here.", ""]) == (["No identifiers here.", ""], {})


def test_known_values_are_found_in_any_spelling_by_one_matcher():
    """``mask_text``, ``redact_texts`` and the runtime's boundary (``replace_known``) match a known
    value the same way: any case, spaces or hyphens, URL-quoted; never inside a longer token."""
    iban = "DE89370400440532013000"
    for spelling in ("de89 3704 0044 0532 0130 00", "DE89-3704-0044-0532-0130-00", iban.lower()):
        text = f"Account {spelling}, please."
        assert masking.mask_text(text, known=[iban]) == "Account DE89 •••• 3000, please."
        assert masking.replace_known(text, {"[IBAN_1]": iban}) == "Account [IBAN_1], please."
        texts, mapping = masking.redact_texts([text], known={"[IBAN_1]": iban})
        assert texts == ["Account [IBAN_1], please."] and mapping == {"[IBAN_1]": iban}
    ref = "ZX-99-4411-ACME"
    assert masking.replace_known("ref=ZX-99-4411-ACME&x", {"[REF_1]": ref}) == "ref=[REF_1]&x"
    assert masking.replace_known("ref ZX-99-4411-ACMEX", {"[REF_1]": ref}) == "ref ZX-99-4411-ACMEX"


def test_values_found_without_a_placeholder_are_known_and_redacted_with_their_label():
    """A run's mapping keeps what its block / warn PII guardrails found as ``found:LABEL:n`` entries:
    masking knows them, redaction gives them their label, and ``restore`` never touches them."""
    from guardrails.engine import restore

    entries = masking.found_entries(
        {"0412 345 678": "PHONE", "DE89370400440532013000": "IBAN"}, besides=["DE89370400440532013000"]
    )
    assert entries == {"found:PHONE:1": "0412 345 678"}
    assert mask_text("Call 0412 345 678.", known=entries.values()) == "Call 04 •••• 78."
    assert redact_texts(["Call 0412 345 678."], known=entries) == (
        ["Call [PHONE_1]."],
        {"[PHONE_1]": "0412 345 678"},
    )
    assert restore("found:PHONE:1 [PHONE_1]", entries) == "found:PHONE:1 [PHONE_1]"
