"""The chunker never cuts a client identifier in two: each passage holds an identifier whole (so the PII
guardrail, which screens passages one by one, recognises it) or not at all.

For every kind the PII check supports, an identifier is placed at every position across the place where
the chunker cuts — the chunk size (a long paragraph cut at a space or hard) and the start of the
overlap carried into the next chunk — and each chunk is then redacted by the PII check as an agent's
guardrail would: no group of the identifier's digits or letters may be left. The same documents cut
without the identifier finder (the chunker before this) do leave groups, which shows each case really
straddles; ``cut_identifiers`` finds those old chunks and none of the new ones."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from guardrails.checks import build_check
from guardrails.checks.pii import ENTITIES
from guardrails.identifiers import FINDER
from knowledge import screening, services
from knowledge.ingest import Block, chunk_blocks
from knowledge.ingest.chunker import cut_identifiers
from knowledge.models import Document, DocumentStatus
from knowledge.screening import identifier_finder
from prisma_glow.audit.models import AuditEvent
from tests.factories import ChunkFactory, KnowledgeBaseFactory

#: One identifier of each kind, written with the spaces (or the keyword) a cut can fall between.
WRITTEN = {
    "email": "anna.schmidt @ example.com",
    "iban": "DE89 3704 0044 0532 0130 00",
    "eu_vat": "FR 40 303 265 045",
    "card": "4111 1111 1111 1111",
    "us_ssn": "SSN: 536228726",
    "us_ein": "EIN: 12-3456789",
    "uk_nino": "AB 12 34 56 C",
    "uk_utr": "UTR 19558 39661",
    "phone": "+44 20 7946 0958",
}
#: What must not reach a provider: any four consecutive characters of the identifier (its keyword and
#: separators aside) — e.g. the digits of the IBAN's middle groups, 3704 0044 0532 0130.
_SEPARATORS = re.compile(r"[\s:\-]+")
FRAGMENTS = {
    entity: {
        compact[i : i + 4]
        for compact in [_SEPARATORS.sub("", re.sub(r"^(?:SSN: |EIN: |UTR )", "", written))]
        for i in range(len(compact) - 3)
    }
    for entity, written in WRITTEN.items()
}
FILLER = "the supplier invoices the branch under the reverse charge rules of the member state "
PII = build_check("pii", {})


def _left_over(texts: list[str], entity: str) -> list[str]:
    """The identifier's fragments still readable in ``texts`` once the PII check redacted each one
    (separators and line breaks ignored)."""
    left = []
    for text in texts:
        redacted = text
        for start, end, _ in reversed(PII.find(text)):
            redacted = redacted[:start] + "[X]" + redacted[end:]
        compact = _SEPARATORS.sub("", redacted)
        left += sorted(fragment for fragment in FRAGMENTS[entity] if fragment in compact)
    return left


def test_the_test_data_is_what_it_claims():
    """The PII check recognises every written identifier whole, with no filler around it."""
    assert set(WRITTEN) == set(ENTITIES)
    for entity, written in WRITTEN.items():
        text = f"{FILLER}{written} {FILLER}"
        assert [e for *_, e in PII.find(text)] == [entity], entity
        assert _left_over([text], entity) == []


def test_agents_registers_the_pii_detector_as_the_identifier_finder():
    assert identifier_finder() is FINDER


def _long_paragraph(written: str, start: int, length: int = 700) -> list[Block]:
    """One paragraph with no sentence end, ``written`` starting at ``start``."""
    head = (FILLER * 20)[:start]
    if not head.endswith(" "):
        head = head[:-1] + " "
    return [Block(head + written + " " + (FILLER * 20)[: length - start], 0, 1)]


@pytest.mark.parametrize("entity", list(WRITTEN))
def test_a_long_paragraph_is_never_cut_inside_an_identifier(entity):
    """Chunk size 200 without overlap: the cut at 200 characters, tried at every position of the
    identifier, moves to a space outside it."""
    written = WRITTEN[entity]
    straddled = 0
    for offset in range(1, len(written)):
        blocks = _long_paragraph(written, 200 - offset)
        new = [c.text for c in chunk_blocks(blocks, size=200, overlap=0, identifiers=FINDER)]
        assert _left_over(new, entity) == [], (offset, new)
        assert cut_identifiers(new, FINDER) == [], offset
        assert all(len(text) <= 200 for text in new)
        old = [c.text for c in chunk_blocks(blocks, size=200, overlap=0)]
        if _left_over(old, entity):
            straddled += 1
            assert cut_identifiers(old, FINDER), (offset, old)
    assert straddled, "the identifier never straddled the cut: the test proves nothing"


@pytest.mark.parametrize("entity", list(WRITTEN))
def test_a_hard_cut_never_falls_inside_an_identifier(entity):
    """A paragraph with no space to cut at is cut at the size — but before an identifier there, not in it."""
    written = WRITTEN[entity]
    straddled = 0
    for offset in range(1, len(written)):
        text = "/" * (200 - offset) + written + " " + "/" * 300
        blocks = [Block(text, 0, 1)]
        new = [c.text for c in chunk_blocks(blocks, size=200, overlap=0, identifiers=FINDER)]
        assert _left_over(new, entity) == [], (offset, new)
        assert written in "".join(new)
        old = [c.text for c in chunk_blocks(blocks, size=200, overlap=0)]
        straddled += bool(_left_over(old, entity))
    assert straddled


@pytest.mark.parametrize("entity", list(WRITTEN))
def test_an_overlap_never_starts_inside_an_identifier(entity):
    """Paragraphs packed into chunks of 300 with an overlap of 80: where the overlap would start inside
    the identifier near the end of a chunk (after each of its spaces in turn), it starts with the
    whole identifier instead."""
    written = WRITTEN[entity]
    straddled = 0
    for space in [i for i, ch in enumerate(written) if ch == " "]:
        prefix = FILLER[:26]
        # The overlap starts after the first space in the last 80 characters: this one.
        suffix_length = 80 + space - len(written)
        suffix = (" " + FILLER * 2)[:suffix_length]
        first = prefix + written + suffix
        assert len(first) - 80 == len(prefix) + space
        blocks = [Block(first, 0, 1), Block((FILLER * 3)[:200].strip(), 0, 1)]
        new = [c.text for c in chunk_blocks(blocks, size=300, overlap=80, identifiers=FINDER)]
        assert len(new) == 2 and written in new[1], (space, new)
        assert _left_over(new, entity) == [], (space, new)
        assert cut_identifiers(new, FINDER) == [], space
        old = [c.text for c in chunk_blocks(blocks, size=300, overlap=80)]
        if _left_over(old, entity):
            straddled += 1
            assert cut_identifiers(old, FINDER), (space, old)
    assert straddled


def test_a_long_paragraph_with_overlap_keeps_every_identifier_whole():
    """The knowledge base's defaults (1,200 / 150) on a long memo listing many identifiers: every
    identifier is found whole in each chunk that holds any of it."""
    written = list(WRITTEN.values())
    text = " ".join(f"{FILLER[: 37 + 11 * i].strip()} {written[i % len(written)]}" for i in range(120))
    blocks = [Block(text, 0, 1)]
    new = [c.text for c in chunk_blocks(blocks, identifiers=FINDER)]
    assert len(new) > 5
    for entity in WRITTEN:
        assert _left_over(new, entity) == [], entity
    assert cut_identifiers(new, FINDER) == []
    old = [c.text for c in chunk_blocks(blocks)]
    assert [c for c in old if c not in new]  # the old chunker cut elsewhere: some identifiers in two
    assert cut_identifiers(old, FINDER)


def test_a_sentence_end_inside_an_identifier_is_not_a_cut():
    """'SSN: 536228726' holds a sentence end for the splitter (a colon, a space, a digit); it stays whole."""
    text = (FILLER * 3)[:190] + " client SSN: 536228726 and " + FILLER * 3
    new = [c.text for c in chunk_blocks([Block(text, 0, 1)], size=220, overlap=0, identifiers=FINDER)]
    assert any("SSN: 536228726" in c for c in new)
    assert _left_over(new, "us_ssn") == []


@pytest.mark.parametrize("entity", list(WRITTEN))
def test_an_identifier_the_file_breaks_across_paragraphs_or_pages_is_joined(entity):
    """A line or page break inside an identifier (at each of its spaces in turn) made two paragraphs,
    whose junction the PII check never sees: they become one paragraph, joined by a space, on the first
    one's page. Paragraphs of figures that form no identifier stay apart."""
    written = WRITTEN[entity]
    straddled = 0
    for space in [i for i, ch in enumerate(written) if ch == " "]:
        blocks = [
            Block(f"{FILLER}the account on file is {written[:space]}", 0, 1),
            Block(f"{written[space + 1 :]} as confirmed by {FILLER}", 0, 2),
        ]
        new = chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)
        assert [(c.page, written in c.text) for c in new] == [(1, True)], (space, new)
        assert _left_over([c.text for c in new], entity) == []
        assert cut_identifiers([c.text for c in new], FINDER) == []
        old = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0)]
        if _left_over(old, entity):
            straddled += 1
            assert cut_identifiers(old, FINDER), (space, old)
    assert straddled


#: An e-mail address in every spelling the PII check accepts: "@", "[at]", "(at)", "{at}" and ".",
#: "[dot]", "(dot)", with or without a space around them, several labels, and the look-alikes its
#: identifier view unfolds (fullwidth "＠", "［at］", "．", a zero-width space inside "[at]").
OBFUSCATED_EMAILS = [
    "anna.meyer @ client-example.com",
    "anna.meyer [at] client-example [dot] com",
    "anna.meyer (at) client-example (dot) com",
    "anna.meyer {at} client-example (dot) com",
    "anna.meyer[at]client-example[dot]com",
    "anna.meyer(at)client-example.com",
    "anna.meyer {at}mail (dot) client-example [dot] co [dot] uk",
    "anna.meyer ＠ client-example．com",
    "anna.meyer ［at］ client-example ［dot］ com",
    "anna.meyer [a\u200bt] client-example [dot] com",
]
_TOKEN_START, _TOKEN_END = "[({@＠［", "])}@＠］"


def _breaks(written: str) -> list[tuple[str, str]]:
    """Where a file may break ``written`` into two paragraphs: at each space (which the break replaces),
    and where a bracketed word or an "@" meets a letter with no space between."""
    breaks = [(written[:i], written[i + 1 :]) for i, ch in enumerate(written) if ch == " "]
    for i in range(1, len(written)):
        before, after = written[i - 1], written[i]
        if " " not in (before, after) and (after in _TOKEN_START or before in _TOKEN_END):
            breaks.append((written[:i], written[i:]))
    return breaks


@pytest.mark.parametrize("written", OBFUSCATED_EMAILS)
def test_an_obfuscated_email_address_the_file_breaks_across_paragraphs_is_joined(written):
    """An address spelt "anna.meyer [at] client-example [dot] com", broken by the file at each place a
    break can fall, is one passage that the PII check redacts whole: whether a paragraph junction may
    hold an identifier is the finder's question (``may_cross``), which knows every spelling the check
    accepts — not the "@" or digit the chunker used to look for, which let "anna.meyer" and "[at]
    client-example [dot] com" reach the provider as two paragraphs the check finds nothing in."""
    assert [e for *_, e in PII.find(f"{FILLER}{written} {FILLER}")] == ["email"], written
    for left, right in _breaks(written):
        blocks = [Block(f"{FILLER}write to {left}", 0, 1), Block(f"{right} for invoices. {FILLER}", 0, 1)]
        new = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)]
        assert len(new) == 1 and "\n\n" not in new[0], (left, right, new)
        redacted = new[0]
        for start, end, _ in reversed(PII.find(redacted)):
            redacted = redacted[:start] + "[X]" + redacted[end:]
        assert "meyer" not in redacted and "client" not in redacted, (left, right, redacted)
        assert cut_identifiers(new, FINDER) == []
        old = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0)]
        assert cut_identifiers(old, FINDER), (left, right, old)


def test_an_identifier_in_superscript_digits_the_file_breaks_is_joined():
    """The PII check reads compatibility digits as digits ("DE⁸⁹ ³⁷⁰⁴…" is an IBAN); so does the finder's
    quick test at a junction, which a "\\d" in the chunker did not."""
    blocks = [Block(f"{FILLER}pay to DE⁸⁹ ³⁷⁰⁴ ⁰⁰⁴⁴", 0, 1), Block(f"⁰⁵³² ⁰¹³⁰ ⁰⁰ by May. {FILLER}", 0, 1)]
    new = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)]
    assert len(new) == 1 and [e for *_, e in PII.find(new[0])] == ["iban"], new


@pytest.mark.parametrize(
    "written", [WRITTEN["iban"], WRITTEN["card"], "anna.meyer [at] client-example [dot] com"]
)
def test_an_identifier_the_file_breaks_twice_is_joined(written):
    """Broken over three lines (a narrow table cell: "DE89 3704" / "0044 0532" / "0130 00"), each
    junction alone holds no identifier the check recognises — the first two lines are no valid IBAN — so
    a junction is judged with the paragraphs after it too: the three become one passage."""
    spaces = [i for i, ch in enumerate(written) if ch == " "]
    for first in spaces:
        for second in [s for s in spaces if s > first]:
            parts = [written[:first], written[first + 1 : second], written[second + 1 :]]
            blocks = [
                Block(f"{FILLER}pay to {parts[0]}", 0, 1),
                Block(parts[1], 0, 1),
                Block(f"{parts[2]} by May. {FILLER}", 0, 1),
            ]
            new = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)]
            assert len(new) == 1 and written in new[0], (parts, new)
            assert cut_identifiers(new, FINDER) == []


def test_the_quick_test_never_hides_an_identifier_crossing_a_junction():
    """Every identifier of every kind and every obfuscated address, broken at each of its characters:
    wherever the finder finds one running across the junction, ``may_cross`` says it may; and it says
    no for a junction in prose, so that it saves the finder's work there."""
    crossings = 0
    for written in [*WRITTEN.values(), *OBFUSCATED_EMAILS]:
        for i in range(1, len(written)):
            left, right = f"{FILLER}see {written[:i].rstrip()}", f"{written[i:].lstrip()} and {FILLER}"
            join = len(left)
            if any(s < join and e > join + 1 for s, e in FINDER.identifiers(f"{left} {right}")):
                crossings += 1
                assert FINDER.may_cross(left, right), (left, right)
    assert crossings > 100
    assert not FINDER.may_cross(FILLER * 5, FILLER * 5)
    assert not FINDER.may_cross("Write to anna.meyer", "for the invoices of May")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("the firm's EIN: 12-3456789", "anna.meyer@client-example.com asked for the invoice"),
        ("call the office on tel. 030 1234 5678", "SSN 123-45-6789 is on file"),
        ("write to m.lang@client-example.com", "EIN: 12-3456789 of the branch"),
    ],
)
def test_a_keyword_of_another_kind_before_a_junction_is_no_cut(before, after):
    """An identifier whole after a junction, announced by its own keyword or by none, does not run back
    across it to a keyword of another kind ("tel." before an SSN, "EIN" or the "m." of "m.lang" before
    an address): ``cut_identifiers`` reports no cut — a fuzzed document re-indexed would otherwise be
    reported again for ever — and the paragraphs are not joined."""
    assert cut_identifiers([f"{FILLER}{before}", f"{after} {FILLER}"], FINDER) == []
    blocks = [Block(f"{FILLER}{before}", 0, 1), Block(f"{after} {FILLER}", 0, 1)]
    new = [c.text for c in chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)]
    assert new == [f"{FILLER}{before}\n\n{after} {FILLER}"]
    assert cut_identifiers(new, FINDER) == []


def test_paragraphs_of_figures_stay_apart():
    blocks = [Block("Turnover 2024: 1 000 000", 0, 1), Block("2 000 000 in 2025", 0, 1), Block("4111", 0, 2)]
    new = chunk_blocks(blocks, size=1200, overlap=0, identifiers=FINDER)
    assert [c.text for c in new] == ["Turnover 2024: 1 000 000\n\n2 000 000 in 2025", "4111"]


def test_without_identifiers_nothing_changes():
    """A document without identifiers is cut exactly as before."""
    blocks = [Block(FILLER * 30, 0, 1), Block(FILLER * 4, 0, 2)]
    assert chunk_blocks(blocks, size=300, overlap=60, identifiers=FINDER) == chunk_blocks(
        blocks, size=300, overlap=60
    )


# --- Documents chunked before: found from their chunks and re-indexed ---------------------------------

# The IBAN starts at 183: its space after "0044" is the last before 200, where the old chunker cut.
IBAN_TEXT = "a " * 88 + "pay to DE89 3704 0044 0532 0130 00 by the end of the month. " + FILLER * 5


@pytest.fixture
def legacy_document(org, editor, settings, tmp_path):
    """A text document processed now, whose chunks are then replaced by those the chunker made before it
    kept identifiers whole (the IBAN cut after "0044")."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    kb = KnowledgeBaseFactory(organization=org, name="Client files", chunk_size=200, chunk_overlap=0)
    document = services.document_create(knowledge_base=kb, actor=editor, text=IBAN_TEXT)
    assert document.status == DocumentStatus.READY
    current = list(document.chunks.order_by("ordinal").values_list("text", flat=True))
    assert _left_over(current, "iban") == []
    old = [c.text for c in chunk_blocks([Block(IBAN_TEXT.strip(), 0, None)], size=200, overlap=0)]
    assert _left_over(old, "iban")  # the old chunker cuts this IBAN in two
    document.chunks.all().delete()
    for ordinal, text in enumerate(old):
        ChunkFactory(document=document, ordinal=ordinal, text=text, page=None)
    Document.objects.filter(pk=document.pk).update(chunk_count=len(old))
    return document


@pytest.mark.django_db
def test_reindex_split_identifiers_finds_and_reindexes_documents_chunked_before(legacy_document, kb):
    """The command lists the document whose chunks cut an identifier (--dry-run changes nothing), then
    re-indexes it (audited as a system action); its new chunks keep the IBAN whole, and a second run
    finds nothing. A document without identifiers is left alone."""
    clean = services.document_create(knowledge_base=kb, actor=None, text=FILLER * 40)
    untouched = list(clean.chunks.values_list("pk", flat=True))
    out = io.StringIO()
    call_command("reindex_split_identifiers", "--dry-run", stdout=out)
    assert "Client files / " in out.getvalue() and "would re-index" in out.getvalue()
    assert "1 document(s) cut an identifier in two" in out.getvalue()
    assert _left_over(list(legacy_document.chunks.values_list("text", flat=True)), "iban")
    assert not AuditEvent.objects.filter(action="document.reindex").exists()

    out = io.StringIO()
    call_command("reindex_split_identifiers", stdout=out)
    assert "1 document(s) queued for re-indexing." in out.getvalue()
    event = AuditEvent.objects.get(action="document.reindex")
    assert (
        event.object_id == str(legacy_document.pk)
        and event.actor_user_id is None
        and event.actor_api_key_id is None
    )
    texts = list(legacy_document.chunks.order_by("ordinal").values_list("text", flat=True))
    assert _left_over(texts, "iban") == [] and any("DE89 3704 0044 0532 0130 00" in t for t in texts)
    assert list(clean.chunks.values_list("pk", flat=True)) == untouched

    out = io.StringIO()
    call_command("reindex_split_identifiers", stdout=out)
    assert out.getvalue().strip() == "No document cuts an identifier in two."


@pytest.mark.django_db
def test_reindex_split_identifiers_scopes_to_an_organization(legacy_document, other_org):
    out = io.StringIO()
    call_command("reindex_split_identifiers", "--dry-run", "--organization", other_org.slug, stdout=out)
    assert out.getvalue().strip() == "No document cuts an identifier in two."
    with pytest.raises(CommandError, match="No organisation 'nope'"):
        call_command("reindex_split_identifiers", "--organization", "nope")


@pytest.mark.django_db
def test_reindex_split_identifiers_refuses_without_a_finder(monkeypatch):
    """Knowledge installed without guardrails has no finder: the command says so instead of finding nothing."""
    monkeypatch.setattr(screening, "_identifier_finder", None)
    with pytest.raises(CommandError, match="No identifier finder is registered"):
        call_command("reindex_split_identifiers")


@pytest.mark.django_db
def test_ingestion_in_the_child_process_keeps_the_identifier_whole(kb, editor, settings, tmp_path):
    """The finder reaches the parsing child (``document_process``): a real upload cut at 140 characters
    (chunk size 200, overlap 60), where the old chunker left "DE89" in one chunk and the rest of the IBAN
    in the next, after the overlap and a paragraph break — whole in neither."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    kb.chunk_size, kb.chunk_overlap = 200, 60
    kb.save()
    text = "a " * 63 + "pay to DE89 3704 0044 0532 0130 00 by the end of the month. " + FILLER * 5
    old = [c.text for c in chunk_blocks([Block(text.strip(), 0, None)], size=200, overlap=60)]
    assert _left_over(old, "iban") and cut_identifiers(old, FINDER)
    document = services.document_create(knowledge_base=kb, actor=editor, text=text)
    texts = list(document.chunks.order_by("ordinal").values_list("text", flat=True))
    assert len(texts) > 3 and _left_over(texts, "iban") == []
    assert cut_identifiers(texts, FINDER) == []
