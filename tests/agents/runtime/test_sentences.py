"""Sentence splitting of a streamed answer: abbreviations and numbers stay inside their sentence, and
the result does not depend on how the provider cut its chunks."""

from __future__ import annotations

import pytest

from agents.runtime.sentences import MAX_SENTENCE, SentenceSplitter, split

CASES = [
    ("Two sentences. Here.", ["Two sentences. ", "Here."]),
    ("Use e.g. the reverse charge. Then stop.", ["Use e.g. the reverse charge. ", "Then stop."]),
    ("That is i.e. a rule. Next.", ["That is i.e. a rule. ", "Next."]),
    ("Das gilt z. B. für Bauleistungen. Ende.", ["Das gilt z. B. für Bauleistungen. ", "Ende."]),
    ("Das gilt z.B. hier. Ende.", ["Das gilt z.B. hier. ", "Ende."]),
    ("Nach § 13b UStG. schuldet der Empfänger.", ["Nach § 13b UStG. ", "schuldet der Empfänger."]),
    ("It follows § 13b UStG. The customer pays.", ["It follows § 13b UStG. ", "The customer pays."]),
    ("Art. 196 MwStSystRL applies. Done.", ["Art. 196 MwStSystRL applies. ", "Done."]),
    ("Siehe Abs. 2 Nr. 1 bzw. Satz 3 UStG. Gut.", ["Siehe Abs. 2 Nr. 1 bzw. Satz 3 UStG. ", "Gut."]),
    # A one- or two-digit number before a full stop reads as an ordinal: the sentences stay joined
    # (released later, never cut where they are not over).
    ("Siehe Satz 3. Gut.", ["Siehe Satz 3. Gut."]),
    ("The total is 1.000,00 EUR. Pay it.", ["The total is 1.000,00 EUR. ", "Pay it."]),
    ("The rate is 19 %. It is standard.", ["The rate is 19 %. ", "It is standard."]),
    ("VAT is €190.00. Net is €1,000.00.", ["VAT is €190.00. ", "Net is €1,000.00."]),
    ("A rate of 3.5 applies. Fine.", ["A rate of 3.5 applies. ", "Fine."]),
    ("Since 2024. New rules.", ["Since 2024. ", "New rules."]),
    ("Ab dem 1. Januar gilt es. Gut.", ["Ab dem 1. Januar gilt es. ", "Gut."]),
    ("It is cited [1]. More [2][3]. End", ["It is cited [1]. ", "More [2][3]. ", "End"]),
    ("It is cited.[1] More.", ["It is cited.[1] ", "More."]),
    ('He said "Stop." Then left.', ['He said "Stop." ', "Then left."]),
    ("(As noted.) Next one.", ["(As noted.) ", "Next one."]),
    ("Really? Yes! Indeed… Next.", ["Really? ", "Yes! ", "Indeed… ", "Next."]),
    ("Options:\n1. First item\n2. Second item\n", ["Options:\n", "1. First item\n", "2. Second item\n"]),
    ("- one\n- two", ["- one\n", "- two"]),
    ("I. Intro text\nII. Rules apply.", ["I. Intro text\n", "II. Rules apply."]),
    ("Dr. Müller and Mr. Smith agree. Ok.", ["Dr. Müller and Mr. Smith agree. ", "Ok."]),
    ("Per the U.S. rules. Next.", ["Per the U.S. rules. ", "Next."]),
    ("Call [EU_VAT_1] now. [IBAN_2] is valid.", ["Call [EU_VAT_1] now. ", "[IBAN_2] is valid."]),
    ("Para one.\n\nPara two.", ["Para one.\n", "\nPara two."]),
    ("no terminator at all", ["no terminator at all"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] for c in CASES])
def test_split(text, expected):
    assert split(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:30] for c in CASES])
def test_chunking_does_not_change_the_sentences(text, expected):
    """Character by character, or in uneven chunks, the same sentences come out."""
    for size in (1, 2, 3, 7):
        splitter = SentenceSplitter()
        out = []
        for i in range(0, len(text), size):
            out += splitter.feed(text[i : i + size])
        tail = splitter.flush()
        assert out + ([tail] if tail else []) == expected


def test_a_sentence_is_released_as_soon_as_the_space_after_it_arrives():
    splitter = SentenceSplitter()
    assert splitter.feed("The VAT is €190.00.") == []
    assert splitter.feed(" ") == ["The VAT is €190.00. "]
    assert splitter.flush() == ""


def test_a_placeholder_split_across_chunks_is_held_until_whole():
    splitter = SentenceSplitter()
    released = splitter.feed("Your number [EU_")
    released += splitter.feed("VAT_1] is valid. Next")
    assert released == ["Your number [EU_VAT_1] is valid. "]
    assert splitter.flush() == "Next"


def test_a_long_text_without_a_boundary_is_cut_at_a_space():
    words = ["word"] * 400
    text = " ".join(words)
    sentences = split(text)
    assert "".join(sentences) == text
    assert len(sentences) > 1 and all(len(s) <= MAX_SENTENCE + 1 for s in sentences)
    assert all(s.endswith(" ") for s in sentences[:-1])
    splitter = SentenceSplitter()
    out = [s for c in text for s in splitter.feed(c)] + [splitter.flush()]
    assert out == sentences


@pytest.mark.parametrize("extra", [0, 5, 9, 10, 11, 20])
def test_a_boundary_near_the_limit_falls_the_same_whatever_the_chunks(extra):
    """A sentence ending just before or after ``MAX_SENTENCE`` characters is split the same way
    whether the text comes at once or character by character."""
    text = "word " * ((MAX_SENTENCE - 10) // 5) + "x" * extra + ". Next sentence here. And more"
    whole = split(text)
    splitter = SentenceSplitter()
    pieces = [s for c in text for s in splitter.feed(c)] + [splitter.flush()]
    assert pieces == whole and "".join(whole) == text
    assert all(len(s) <= MAX_SENTENCE + 1 for s in whole)


@pytest.mark.parametrize(
    "text",
    [
        "Die Frist endet am 1. Januar. Danach gilt § 13b UStG.",
        "It costs approx. 190 EUR incl. VAT. Pay it by the 15th.",
        "See ch. 4 and d.h. the annex. Ed. note: none.",
    ],
)
def test_the_offline_engine_cuts_passages_by_the_live_answers_rule(text):
    """One sentence rule: the offline engine's sentences are the live splitter's, trimmed, and the
    abbreviations either knew are known to both ("approx.", "incl.", "ch.", "d.h.")."""
    from agents.runtime.providers.offline import split_sentences

    assert split_sentences(text) == [s.strip() for s in split(text)]
    assert len(split(text)) == 2
