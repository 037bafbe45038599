"""Pieces of the offline engine that are tested on their own (the engine as a whole runs in the pipeline
tests)."""

from __future__ import annotations

import random

from agents.runtime.providers.offline import count_tokens, overlap, terms


def test_overlap_counts_exactly_the_question_words_terms_finds():
    """``overlap`` (str.find on ASCII sentences, for speed) agrees with ``terms`` on random sentences of
    question words, their prefixes and extensions, word glue, digits and non-ASCII letters."""
    rng = random.Random(20261128)
    pieces = ["vat", "va", "vats", "invoice", "invoices", "charge", "recharge", "the", "and", "é", "_", "x",
              "1", "-", " ", ".", "Ä", "İ", "ß", "\u00a0", "VAT", "Invoice", "CHARGE"]  # fmt: skip
    questions = [
        "Who pays the VAT on an invoice?",
        "Reverse charge: what applies?",
        "İnvoice straße 1st vat_x",
    ]
    checked = ascii_sentences = 0
    for _ in range(5000):
        wanted = terms(rng.choice(questions))
        sentence = "".join(rng.choices(pieces, k=rng.randint(0, 30)))
        assert overlap(wanted, sentence) == len(wanted & terms(sentence)), (wanted, sentence)
        checked += 1
        ascii_sentences += sentence.isascii()
    assert checked == 5000 and 500 < ascii_sentences < 4500


def test_token_counts_estimate_four_characters_a_token():
    assert (count_tokens(""), count_tokens("abc"), count_tokens("abcd"), count_tokens("abcde")) == (
        0,
        1,
        1,
        2,
    )
