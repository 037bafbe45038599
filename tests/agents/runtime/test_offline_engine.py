"""The offline engine: its terms, sentences and answers, alone and on the demonstration firm's
knowledge (``seed_demo``) with paraphrased questions."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from agents.models import Agent
from agents.runtime import execute
from agents.runtime.providers.offline import (
    LABEL,
    count_tokens,
    extract_answer,
    split_sentences,
    terms,
    units,
)


def test_terms_fold_inflections_synonyms_and_languages():
    """Stems in English and German, the firm's synonyms, phrases, countries by adjective or capital."""
    assert terms("invoices") == terms("invoice") == terms("bills") == terms("Rechnungen") == {"invoice"}
    assert terms("sales tax") == terms("value added tax") == terms("Umsatzsteuer") == terms("VAT") == {"vat"}
    assert terms("a fixed establishment") == terms("the branch") == {"branch"}
    assert terms("Paris") == terms("French") == terms("Frankreich") == {"country:fr"}
    assert terms("reverse-charged services") == {"reverse charge", "servic"}
    assert terms("Who pays?") == terms("the customer accounts for it") - {"customer"} == {"pay"}
    assert "suppli" in terms("supply") and "supplier" in terms("suppliers")  # not folded together
    assert terms("Wie lange muss man Rechnungen aufbewahren?") == {"lang", "invoice", "keep"}
    assert terms("What is it, and who are they?") == set()


def test_terms_read_numbers_as_written_without_separators():
    assert terms("EUR 1,000") == terms("1.000 EUR") == terms("1000 EUR") == {"1000", "eur"}
    assert terms("190.00 at 19%; 25.5% and 1.000,50") == {"190", "19", "25.5", "1000.5"}
    assert terms("item 1 of 3") == {"item"}  # single digits (list numbers, days) say nothing
    assert terms("Is [IBAN_1] valid?") == {"valid"}  # a placeholder is no word of the question


def test_sentences_end_at_punctuation_not_after_abbreviations_or_inside_numbers():
    assert split_sentences(
        "Reverse charge applies, e.g. for consultancy. Under § 13b UStG the customer pays. The fee is "
        "1.000,00 EUR. See Art. 44 of the Directive, i.e. the general rule! Is it B2B? Yes."
    ) == [
        "Reverse charge applies, e.g. for consultancy.",
        "Under § 13b UStG the customer pays.",
        "The fee is 1.000,00 EUR.",
        "See Art. 44 of the Directive, i.e. the general rule!",
        "Is it B2B?",
        "Yes.",
    ]


def test_units_are_sentences_list_items_with_their_lead_in_and_table_rows():
    text = (
        "continued from the previous chunk. The supplier must still:\n\n"
        "issue an invoice;\n\nreport the supply.\n\n"
        "| Member state | Standard rate | |---|---| | Germany | 19% | | Spain | 21% |\n\n"
        "- A marked item. With two sentences."
    )
    assert [(u.text, u.lead) for u in units(text)] == [
        ("The supplier must still:", ""),
        ("issue an invoice;", "The supplier must still:"),
        ("report the supply.", "The supplier must still:"),
        ("Member state: Germany; Standard rate: 19%.", ""),
        ("Member state: Spain; Standard rate: 21%.", ""),
        ("A marked item.", ""),
        ("With two sentences.", ""),
    ]
    # A chunk starting inside a list whose lead-in is in the previous chunk: its items are skipped.
    assert [u.text for u in units("the date;\n\nthe number;\n\nAn invoice lacking it is wrong.")] == [
        "An invoice lacking it is wrong."
    ]


def test_extract_answer_keeps_to_the_subject_and_cites_the_passages_given():
    passages = [
        {"text": "The staff canteen serves lunch from noon. Invoices are filed monthly.", "heading_path": ""},
        {
            "text": "A consultant in Germany bills a French company: the French customer pays the VAT. "
            "If the service goes to a fixed establishment, the place of supply is that establishment.",
            "heading_path": "Place of supply",
        },
    ]
    body, cited = extract_answer(
        "A Spanish supplier bills the Paris branch: where is the place of supply?", passages
    )
    assert (
        body
        == "- If the service goes to a fixed establishment, the place of supply is that establishment. [2]"
    )
    assert cited == [2]
    assert extract_answer("When does the canteen open?", passages) == (
        "- The staff canteen serves lunch from noon. [1]",
        [1],
    )
    german = [{"text": "Die Kantine ist geöffnet. Die Aufbewahrungsfrist für Rechnungen beträgt zehn Jahre. "
               "Die Aufbewahrung der Rechnungen erfolgt digital.", "heading_path": ""}]  # fmt: skip
    assert extract_answer("How long must bills be kept?", german) == (
        "- Die Aufbewahrung der Rechnungen erfolgt digital. [1]",
        [1],
    )
    assert extract_answer("Quantum chromodynamics?", passages) == ("", [])
    assert extract_answer("What, and who?", passages) == ("", [])


def test_token_counts_estimate_four_characters_a_token():
    assert (count_tokens(""), count_tokens("abc"), count_tokens("abcd"), count_tokens("abcde")) == (
        0,
        1,
        1,
        2,
    )


# --- On the demonstration firm's knowledge ---------------------------------------------------------

#: (question, the answer holds each of these, and none of those); the first two are the issue's. The
#: knowledge search knows no synonyms: each question shares a word with the passage that answers it.
PARAPHRASES = [
    (
        "A Spanish supplier is billing a Paris branch of our client for consultancy. Where is the place of supply?",
        ["fixed establishment of the customer", "the place of supply is where the customer has established"],
        ["German consultant", "established in Germany", "non-taxable person"],
    ),
    ("What is the VAT on €1,000 at 19%?", ["€190.00", "On EUR 1,000 net at 19%"], ["12,000", "consultant"]),
    ("What is the standard rate in Spain?", ["Member state: Spain; Standard rate: 21%"], ["Germany"]),
    (
        "What is the retention period for bills in Germany?",
        ["10 years in Germany"],
        ["rounding", "consultant"],
    ),
    (
        "By when must the supplier send the invoice for a reverse-charged consultancy service?",
        ["no later than the 15th day of the month following"],
        ["canteen"],
    ),
    ("Can a simplified bill be used for reverse-charged services?", ["may not be used for"], ["German"]),
    ("My laptop was stolen, what now?", ["laptop"], ["exemption is lost"]),
]


@pytest.fixture
def demo_vat_adviser(db):
    call_command("seed_demo", stdout=StringIO())
    return Agent.objects.get(organization__slug="demo", slug="vat-adviser-demo")


def first_appearances(text: str) -> list[int]:
    return list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", text)))


def test_paraphrased_questions_get_the_sentences_that_answer_them(demo_vat_adviser):
    """With every demo guardrail assigned (PII redaction, prompt injection, blocked topics, citations
    required, disclaimer): each answer quotes what answers the question and nothing off its subject,
    says it is extractive, and numbers its citations 1…n in order of appearance."""
    failures = []
    for question, present, absent in PARAPHRASES:
        execution = execute(demo_vat_adviser, question, source="cli")
        assert execution.status == "completed", (question, execution.error)
        output = execution.output
        assert output.startswith(LABEL)
        missing = [p for p in present if p not in output]
        unwanted = [a for a in absent if a in output]
        if missing or unwanted:
            failures.append((question, missing, unwanted, output))
        cited = first_appearances(output)
        assert cited == list(range(1, len(cited) + 1)) and cited, (question, output)
        assert [c["n"] for c in execution.citations] == cited
        retrieved = execution.steps.get(kind="retrieval").output["passages"]
        for citation in execution.citations:
            assert retrieved[citation["passage"] - 1]["chunk_id"] == citation["chunk_id"]
    assert not failures, failures


def test_the_same_question_gets_the_same_answer_and_an_unanswerable_one_says_so(demo_vat_adviser):
    question = PARAPHRASES[0][0]
    first, second = (execute(demo_vat_adviser, question, source="cli") for _ in range(2))
    assert first.output == second.output and first.citations == second.citations
    nothing = execute(demo_vat_adviser, "Qué tal el fútbol hoy?", source="cli")
    assert "I found nothing relevant" in nothing.output or "none of the retrieved passages" in nothing.output
