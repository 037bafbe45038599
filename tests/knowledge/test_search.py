"""Retrieval: ranking, filters (as-of, jurisdiction), isolation, citations and highlights."""

from __future__ import annotations

import datetime

import pytest

from knowledge import services
from knowledge.search import Passage, jurisdiction_scope, search
from knowledge.search.query import parse_query
from tests.factories import ChunkFactory, DocumentFactory, KnowledgeBaseFactory

pytestmark = pytest.mark.django_db


def add(kb, text, *, title="Doc", actor=None, **fields):
    return services.document_create(knowledge_base=kb, actor=actor, title=title, text=text, **fields)


def test_exact_phrase_ranks_first(kb):
    """The passage containing the query as a phrase outranks passages with the words scattered."""
    add(kb, "The charge for late filing is reverse of what you expect.", title="Scattered")
    add(kb, "Under the reverse charge the customer accounts for the VAT.", title="Phrase")
    add(kb, "Charge codes and reverse entries in the ledger; charge again in reverse.", title="Repeated")
    passages = search([kb], "reverse charge")
    assert passages[0].document_title == "Phrase"
    assert len(passages) == 3
    assert passages[0].score > passages[1].score

    quoted = search([kb], '"reverse charge" customer')
    assert quoted[0].document_title == "Phrase"


def test_more_query_words_rank_higher_and_unrelated_text_is_not_returned(kb):
    add(kb, "Inventory counts must be observed by the auditor at year end.", title="Inventory")
    add(kb, "The auditor assesses going concern.", title="Going concern")
    add(kb, "Lunch menu: soup and bread.", title="Menu")
    passages = search([kb], "auditor observe inventory count")
    assert [p.document_title for p in passages] == ["Inventory", "Going concern"]


def test_question_in_plain_language_finds_passages_sharing_some_words(kb):
    """Words are OR-ed: a long question still finds passages that contain only a few of its words."""
    add(kb, "Cross-border B2B services: the recipient accounts for VAT under the reverse charge.")
    passages = search(
        [kb], "A German consultant invoices a French company for advisory services. Who accounts for the VAT?"
    )
    assert len(passages) == 1
    assert passages[0].highlights


def test_stemming_matches_word_forms(kb):
    add(kb, "Invoices were issued late and the penalties charged.")
    assert search([kb], "invoice issuing penalty charge")


def test_excluded_words_leave_passages_out(kb):
    add(kb, "Lease accounting under IFRS 16.", title="IFRS")
    add(kb, "Lease accounting under US GAAP ASC 842.", title="GAAP")
    assert [p.document_title for p in search([kb], "lease accounting -gaap")] == ["IFRS"]


def test_empty_or_stopword_only_query_returns_nothing(kb):
    add(kb, "Some content.")
    assert search([kb], "") == []
    assert search([kb], "   ") == []
    assert search([kb], '""') == []
    assert search([], "content") == []


def test_query_syntax_characters_are_not_errors(kb):
    """Characters that mean something to FTS5 or tsquery are treated as plain text."""
    add(kb, "Section 13b UStG: reverse charge (Steuerschuldnerschaft).")
    for query in ['13b"', "NEAR(a b)", "a AND OR NOT", "col:umn", "* ^ ( ) ! & | : '", "UStG §13b"]:
        search([kb], query)  # must not raise
    assert search([kb], "UStG §13b")[0].text.startswith("Section 13b")


def test_as_of_leaves_out_documents_not_in_force(kb):
    add(kb, "VAT rate is 16 percent.", title="2020 rates", effective_from=datetime.date(2020, 7, 1),
        effective_to=datetime.date(2020, 12, 31))  # fmt: skip
    add(kb, "VAT rate is 19 percent.", title="Current rates", effective_from=datetime.date(2021, 1, 1))
    add(kb, "VAT rate basics apply always.", title="Timeless")
    titles = lambda **kw: sorted(p.document_title for p in search([kb], "VAT rate", **kw))  # noqa: E731
    assert titles() == ["2020 rates", "Current rates", "Timeless"]
    assert titles(as_of=datetime.date(2020, 9, 1)) == ["2020 rates", "Timeless"]
    assert titles(as_of=datetime.date(2020, 12, 31)) == ["2020 rates", "Timeless"]  # last day is in force
    assert titles(as_of=datetime.date(2021, 1, 1)) == ["Current rates", "Timeless"]
    assert titles(as_of="2019-01-01") == ["Timeless"]
    assert titles(as_of=datetime.datetime(2021, 5, 1, 12, 0, tzinfo=datetime.UTC)) == [
        "Current rates",
        "Timeless",
    ]


def test_jurisdiction_filter_keeps_matching_parent_and_blank(kb):
    add(kb, "Filing deadline rules for Germany.", title="DE", jurisdiction="DE")
    add(kb, "Filing deadline rules for the United States.", title="US", jurisdiction="US")
    add(kb, "Filing deadline rules for New York.", title="US-NY", jurisdiction="US-NY")
    add(kb, "Filing deadline rules everywhere.", title="Any")
    titles = lambda j: sorted(p.document_title for p in search([kb], "filing deadline", jurisdiction=j))  # noqa: E731
    assert titles(None) == ["Any", "DE", "US", "US-NY"]
    assert titles("de") == ["Any", "DE"]
    assert titles("US-NY") == ["Any", "US", "US-NY"]
    assert titles("US") == ["Any", "US"]
    assert titles("FR") == ["Any"]
    assert jurisdiction_scope("us-ny-nyc") == ["US-NY-NYC", "US-NY", "US"]


def test_only_processed_documents_are_searched(kb):
    ready = DocumentFactory(knowledge_base=kb, status="ready", title="Ready")
    pending = DocumentFactory(knowledge_base=kb, status="pending", title="Pending")
    failed = DocumentFactory(knowledge_base=kb, status="failed", title="Failed")
    for document in (ready, pending, failed):
        ChunkFactory(document=document, text="Depreciation of fixed assets.")
    assert [p.document_title for p in search([kb], "depreciation")] == ["Ready"]


def test_one_organisation_never_retrieves_another_organisations_passages(kb, other_kb):
    add(kb, "Our firm's materiality benchmark is five percent of profit.", title="Ours")
    add(other_kb, "Their firm's materiality benchmark is one percent of revenue.", title="Theirs")
    assert [p.document_title for p in search([kb], "materiality benchmark")] == ["Ours"]
    assert [p.document_title for p in search([other_kb], "materiality benchmark")] == ["Theirs"]
    # Passing ids together with the organisation drops knowledge bases of any other organisation.
    mixed = search([kb.pk, other_kb.pk], "materiality benchmark", organization=kb.organization)
    assert [p.document_title for p in mixed] == ["Ours"]


def test_several_knowledge_bases_with_different_languages(org):
    english = KnowledgeBaseFactory(organization=org, search_config="english")
    german = KnowledgeBaseFactory(organization=org, search_config="german")
    add(english, "Auditors test controls over revenue.", title="EN")
    add(german, "Die Prüfer testen die Kontrollen der Umsatzerlöse.", title="DE")
    assert [p.document_title for p in search([english, german], "Kontrollen")] == ["DE"]
    both = search([english, german], "controls Kontrollen", top_k=5)
    assert sorted(p.document_title for p in both) == ["DE", "EN"]


def test_top_k_min_score_and_scores_in_unit_range(kb):
    for i in range(8):
        add(kb, f"Audit sampling note number {i} about sample sizes.", title=f"Note {i}")
    passages = search([kb], "audit sampling", top_k=3)
    assert len(passages) == 3
    assert all(0 < p.score < 1 for p in passages)
    assert passages == sorted(passages, key=lambda p: -p.score)
    threshold = passages[0].score + 0.001
    assert search([kb], "audit sampling", min_score=threshold) == []


def test_passage_citation_and_highlights(kb):
    add(kb, "# Reverse charge\n\nThe customer accounts for <VAT> on charges.", title="VAT manual")
    passage = search([kb], "charge")[0]
    assert isinstance(passage, Passage)
    assert passage.citation_label() == "VAT manual, § Reverse charge"
    data = passage.to_dict()
    assert set(data) >= {
        "chunk_id", "document_id", "document_title", "knowledge_base_id", "ordinal", "text", "score",
        "page", "heading_path", "citation", "highlights", "highlighted_html",
    }  # fmt: skip
    start, end = data["highlights"][0]
    assert data["text"][start:end] == "charges"
    assert data["highlighted_html"] == "The customer accounts for &lt;VAT&gt; on <mark>charges</mark>."


def test_search_query_count_does_not_grow_with_results(kb, django_assert_max_num_queries):
    for i in range(30):
        add(kb, f"Revenue recognition memo {i} on performance obligations.", title=f"Memo {i}")
    with django_assert_max_num_queries(1):
        assert len(search([kb], "revenue recognition", top_k=20)) == 20
    with django_assert_max_num_queries(2):
        search([kb.pk], "revenue recognition", top_k=20)


def test_chunks_written_directly_are_indexed(kb):
    """The index is kept by database triggers, so chunks created by any code path are searchable,
    and edits and deletes are reflected."""
    document = DocumentFactory(knowledge_base=kb, status="ready")
    chunk = ChunkFactory(document=document, text="Contingent liabilities disclosure.")
    assert [p.chunk_id for p in search([kb], "contingent")] == [chunk.pk]
    chunk.text = "Provisions and onerous contracts."
    chunk.save()
    assert search([kb], "contingent") == []
    assert search([kb], "onerous")[0].chunk_id == chunk.pk
    chunk.delete()
    assert search([kb], "onerous") == []


def test_query_parser():
    parsed = parse_query('reverse "place of supply" -gaap "x"')
    assert parsed.terms == ["reverse", "x"]
    assert parsed.phrases == [["place", "of", "supply"]]
    assert parsed.excluded == ["gaap"]
    assert parsed.fts5() == '("place of supply" OR "reverse" OR "x") NOT ("gaap")'


def test_reranking_finds_exactly_the_stems_the_highlighting_expression_finds():
    """``_stems_found`` (str.find, for speed) agrees with the expression of ``Matcher.words`` applied to
    lowercased text (case-sensitively) on random texts made of query words, their prefixes, word glue
    and non-ASCII letters."""
    import random
    import re

    from knowledge.search.query import _stems_found, matcher

    rng = random.Random(20261128)
    pieces = ["vat", "va", "v", "invoice", "invoic", "in", "charge", "ch", "servic", "é", "_", "x", "1", "-",
              " ", ".", "Ä", "ß", "İ", "ǅ", "ſ", "\u212a", "\u00a0"]  # fmt: skip
    words = ["vat", "invoice", "charges", "services", "in", "va", "supply", "İstanbul", "straße", "_a", "1st"]
    checked = 0
    for _ in range(5000):
        m = matcher(parse_query(" ".join(rng.choices(words, k=rng.randint(1, 5)))))
        if m.words is None:
            continue
        lowered = "".join(rng.choices(pieces, k=rng.randint(0, 40))).lower()
        expected = set(re.compile(m.words.pattern).findall(lowered))
        assert _stems_found(lowered, m.stems) == expected, (m.stems, lowered)
        checked += 1
    assert checked > 4000


def test_tiers_grow_looser_one_step_at_a_time():
    from knowledge.search.query import tiers

    def kinds(n):
        return [k for k, _ in tiers([f"w{i}" for i in range(n)], conjunction=tuple, disjunction=list)]

    assert kinds(1) == ["any"]
    assert kinds(2) == ["all", "any"]
    assert kinds(3) == ["all", "pairs", "any"]
    assert kinds(4) == ["all", "all_but_one", "pairs", "any"]
    assert kinds(5) == kinds(12) == ["all", "all_but_one", "all_but_two", "pairs", "any"]
    by_kind = dict(tiers(["a", "b", "c", "d", "e"], conjunction=tuple, disjunction=list))
    assert by_kind["all_but_one"] == [("b", "c", "d", "e"), ("a", "c", "d", "e"), ("a", "b", "d", "e"),
                                      ("a", "b", "c", "e"), ("a", "b", "c", "d")]  # fmt: skip
    assert len(by_kind["all_but_two"]) == 10 and all(len(c) == 3 for c in by_kind["all_but_two"])
    # The looser tiers combine the first eight units; "all" and "any" every one.
    long = dict(tiers([f"w{i}" for i in range(12)], conjunction=tuple, disjunction=list))
    assert len(long["all"]) == 12 and len(long["any"]) == 12 and len(long["pairs"]) == 28


def test_a_passage_with_most_of_a_long_question_is_found_behind_many_with_two_of_its_words(kb, monkeypatch):
    """Tiers keep the first rows the index returns, in storage order. A passage stored after many
    passages sharing two common words of the question, and holding all of its words but one, must
    still be a candidate: it has a tier of its own (all but one) instead of competing for the capped
    "any two" tier. (Caps made small here so that a few passages overflow them.)"""
    from knowledge.search import query, sqlite

    for caps in (query.TIER_CAPS, sqlite.SQLITE_TIER_CAPS):
        for kind in caps:
            monkeypatch.setitem(caps, kind, 5)
    for i in range(30):
        add(
            kb,
            f"Memo {i}: the VAT invoice was filed with the ledger entries for period {i}.",
            title=f"Memo {i}",
        )
    add(
        kb,
        "An invoice without the customer's VAT number cannot apply the reverse charge: ask for a corrected one.",
        title="Reverse charge invoices",
    )
    passages = search([kb], "invoice missing customer VAT number reverse charge")
    assert passages and passages[0].document_title == "Reverse charge invoices"


def test_the_searchable_statuses_are_ready_and_processing_on_both_engines(kb):
    """The document filter's statuses come from ``DocumentStatus``: a document being re-indexed keeps
    its previous chunks searchable; pending and failed ones are never searched."""
    from knowledge.models import DocumentStatus
    from knowledge.search.candidates import SEARCHABLE_STATUSES

    assert set(SEARCHABLE_STATUSES) == {DocumentStatus.READY, DocumentStatus.PROCESSING}
    for status in DocumentStatus:
        document = DocumentFactory(knowledge_base=kb, status=status, title=status.label)
        ChunkFactory(document=document, text="Depreciation of fixed assets.")
    assert sorted(p.document_title for p in search([kb], "depreciation")) == ["Processing", "Ready"]


def test_the_postgresql_tier_plan_is_the_tiers_of_the_query():
    """``knowledge_search`` evaluates the tiers Python sends (``tier_plan``), so PostgreSQL and SQLite
    gather candidates by the same combinations of units: decoding the plan gives ``query.tiers``."""
    from knowledge.search.postgres import tier_plan
    from knowledge.search.query import tiers

    for count in range(1, 13):
        kinds, plan = tier_plan(count)
        decoded, tier, group = [], [], []
        for number in plan:
            if number > 0:
                group.append(number)
            elif number == 0:
                tier.append(tuple(group))
                group = []
            else:
                decoded.append(tier)
                tier = []
        expected = tiers(
            list(range(1, count + 1)),
            conjunction=tuple,
            disjunction=lambda parts: [p if isinstance(p, tuple) else (p,) for p in parts],
        )
        assert kinds == [kind for kind, _ in expected]
        assert decoded == [[e] if isinstance(e, tuple) else e for _, e in expected]
