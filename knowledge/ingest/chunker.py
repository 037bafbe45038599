"""Structure-aware chunking: sections first, then paragraphs, then sentences.

A heading closes the current chunk, so a passage never straddles two sections and its heading path
says where it comes from; so does a new page (PDF), so that a chunk's page is where its text is. Inside a section, paragraphs are packed up to ``size`` characters; when a
section needs several chunks, each repeats the last ``overlap`` characters of the previous one (cut at
a word boundary) so that a sentence split between them is still found whole. A paragraph longer than
``size`` is split at sentence ends, and a sentence longer than ``size`` at word boundaries.

Given where a text's client identifiers are (knowledge's screening hook, ``knowledge.screening``:
guardrails' PII detector), no cut and no overlap starts inside an identifier or between it and the
keyword announcing it, so the PII guardrail, which screens each passage alone at an agent run,
recognises every identifier a passage holds. ``cut_identifiers`` finds the chunks of a document that
an earlier chunker cut through an identifier (``manage.py reindex_split_identifiers``).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from knowledge.ingest.parsers import Block

if TYPE_CHECKING:
    from knowledge.screening import IdentifierFinder

Spans = Callable[[str], list[tuple[int, int]]]
#: Longer than any identifier with its announcing keyword (an e-mail address is at most 254
#: characters): an identifier crossing a position lies within this distance on either side.
LONGEST_IDENTIFIER = 400

HEADING_SEPARATOR = " › "
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[A-Z0-9§€$£])")


@dataclass(frozen=True)
class ChunkData:
    """A passage ready to store: text plus where it is (first page, heading path)."""

    text: str
    page: int | None
    heading_path: str

    @property
    def token_count(self) -> int:
        """An estimate (about four characters per token for English prose)."""
        return max(1, math.ceil(len(self.text) / 4))


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` in order, overlapping ones joined (a widened identifier may overlap the next)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _inside(spans: list[tuple[int, int]], position: int) -> tuple[int, int] | None:
    """The span of ``spans`` (merged, in order) that a cut at ``position`` would split, or None."""
    index = bisect.bisect_left(spans, (position, position)) - 1
    if index >= 0 and spans[index][0] < position < spans[index][1]:
        return spans[index]
    return None


def _sentences(text: str, spans: list[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    """``(start, end)`` of the sentences of ``text``; a sentence end inside an identifier is none."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if _inside(spans, match.start()):
            continue
        yield start, match.start()
        start = match.end()
    yield start, len(text)


def _cut(text: str, start: int, size: int, spans: list[tuple[int, int]]) -> int:
    """Where to end a piece of a sentence longer than ``size`` that starts at ``start``: the last
    space in its first ``size`` characters (past half of them) outside an identifier, else at
    ``size`` — or, if that is inside an identifier, before it (after it when it starts the piece:
    a piece may then run past ``size`` by that identifier's length)."""
    low = start + size // 2
    cut = text.rfind(" ", start, start + size)
    while cut > low and _inside(spans, cut):
        cut = text.rfind(" ", start, cut)
    if cut > low:
        return cut
    cut = start + size
    span = _inside(spans, cut)
    if span is not None:
        cut = span[0] if span[0] > start else span[1]
    return cut


def _split_long(text: str, size: int, spans: Iterable[tuple[int, int]] = ()) -> list[str]:
    """Pieces of at most ``size`` characters, cut at sentence ends, else at spaces, else hard — never
    inside one of ``spans`` (the identifiers of ``text``)."""
    if len(text) <= size:
        return [text]
    spans = _merged(spans)
    pieces: list[str] = []
    current = ""
    for start, end in _sentences(text, spans):
        while end - start > size:
            cut = _cut(text, start, size, spans)
            head = text[start:cut].rstrip()
            start = cut
            while start < end and text[start].isspace():
                start += 1
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if start >= end:
            continue
        sentence = text[start:end]
        if current and len(current) + 1 + len(sentence) > size:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces


def _spans_near(text: str, position: int, spans: Spans) -> list[tuple[int, int]]:
    """The ``spans`` of ``text`` that may reach ``position`` (found in a window around it)."""
    window = max(0, position - LONGEST_IDENTIFIER)
    found = spans(text[window : position + LONGEST_IDENTIFIER])
    return _merged((start + window, end + window) for start, end in found)


def _tail(text: str, overlap: int, identifiers: IdentifierFinder | None = None) -> str:
    """The last ``overlap`` characters of ``text``, starting at a word boundary — and not inside an
    identifier: then the tail starts with the whole identifier (a little longer than ``overlap``)."""
    if overlap <= 0 or not text:
        return ""
    if len(text) <= overlap:
        return text
    start = len(text) - overlap
    space = text.find(" ", start)
    if 0 <= space < len(text) - 1:
        start = space + 1
    if identifiers is not None:
        span = _inside(_spans_near(text, start, identifiers.spans), start)
        if span is not None:
            start = span[0]
    return text[start:]


def chunk_blocks(
    blocks: Iterable[Block],
    *,
    size: int = 1200,
    overlap: int = 150,
    identifiers: IdentifierFinder | None = None,
) -> list[ChunkData]:
    """Cut parsed blocks into chunks of about ``size`` characters with ``overlap`` between them.

    With ``identifiers`` (where a text's client identifiers are), no cut and no overlap starts inside
    an identifier, and two paragraphs an identifier runs across (a line break inside an IBAN) are
    one, joined by a space: each passage holds an identifier whole, as the PII guardrail, which
    screens each passage alone, recognises it, or not at all."""
    if size < 50:
        raise ValueError("chunk size must be at least 50 characters")
    overlap = max(0, min(overlap, size // 2))
    chunks: list[ChunkData] = []
    headings: list[tuple[int, str]] = []
    parts: list[str] = []
    length = 0
    page: int | None = None
    # Whether ``parts`` holds only the overlap carried from the previous chunk (nothing new yet).
    carried_only = False

    def path() -> str:
        return HEADING_SEPARATOR.join(title for _, title in headings)[:500]

    def emit() -> None:
        nonlocal parts, length, page, carried_only
        if parts and not carried_only:
            chunks.append(ChunkData("\n\n".join(parts), page, path()))
        parts, length, page, carried_only = [], 0, None, False

    def emit_with_overlap() -> None:
        nonlocal parts, length, carried_only
        previous = "\n\n".join(parts)
        emit()
        tail = _tail(previous, overlap, identifiers)
        if tail:
            # The page of a chunk is where its new text starts, not where the carried overlap was.
            parts, length, carried_only = [tail], len(tail), True

    if identifiers is not None:
        blocks = _join_broken(blocks, identifiers)
    for block in blocks:
        if block.is_heading:
            emit()
            while headings and headings[-1][0] >= block.level:
                headings.pop()
            headings.append((block.level, block.text[:200]))
            continue
        if parts and not carried_only and block.page != page:
            # A new page closes the chunk, so every chunk cites the one page its text is on.
            emit_with_overlap()
        budget = size - overlap if overlap else size
        long = identifiers is not None and len(block.text) > budget
        for piece in _split_long(block.text, budget, identifiers.spans(block.text) if long else ()):
            added = len(piece) + (2 if parts else 0)
            if parts and length + added > size:
                emit_with_overlap()
                added = len(piece) + (2 if parts else 0)
            if page is None:
                page = block.page
            parts.append(piece)
            length += added
            carried_only = False
    emit()
    return chunks


def _crossing(left: str, right: str, identifiers: IdentifierFinder) -> bool:
    """Whether an identifier runs from the end of ``left`` into ``right`` once they are joined by a
    space (the last and first ``LONGEST_IDENTIFIER`` characters suffice)."""
    if not left.strip() or not right.strip() or not identifiers.may_cross(left, right):
        return False  # the finder's quick test: nothing near the junction could belong to an identifier
    left, right = left[-LONGEST_IDENTIFIER:], right[:LONGEST_IDENTIFIER]
    join = len(left)
    return any(start < join and end > join + 1 for start, end in identifiers.identifiers(f"{left} {right}"))


def _ahead(blocks: list[Block], index: int) -> str:
    """The paragraph at ``index`` and those after it up to a heading, joined by a space, as far as an
    identifier running into it from before could reach (``LONGEST_IDENTIFIER`` characters)."""
    parts: list[str] = []
    length = 0
    for block in blocks[index:]:
        if block.is_heading or length >= LONGEST_IDENTIFIER:
            break
        parts.append(block.text[: LONGEST_IDENTIFIER - length])
        length += len(parts[-1]) + 1
    return " ".join(parts)


def _join_broken(blocks: Iterable[Block], identifiers: IdentifierFinder) -> Iterator[Block]:
    """``blocks`` with consecutive paragraphs that an identifier runs across made one (joined by a
    space, on the first one's page): the file broke the identifier, by a line or a page — perhaps more
    than once ("DE89 3704" / "0044 0532" / "0130 00"), so whether an identifier runs across a junction
    is asked of the paragraphs after it too, not only of the next."""
    blocks = list(blocks)
    held: Block | None = None
    for index, block in enumerate(blocks):
        if (
            held is not None
            and not block.is_heading
            and _crossing(held.text, _ahead(blocks, index), identifiers)
        ):
            held = replace(held, text=f"{held.text} {block.text}")
            continue
        if held is not None:
            yield held
        held = None if block.is_heading else block
        if block.is_heading:
            yield block
    if held is not None:
        yield held


def _carried(previous: str, text: str) -> str:
    """The overlap ``text`` starts with: the longest part of it, up to a paragraph break (the chunker
    joins parts with one) or its end, that ``previous`` ends with; "" when there is none."""
    ends = [match.start() for match in re.finditer("\n\n", text)] + [len(text)]
    for end in reversed(ends):
        if 0 < end <= len(previous) and previous.endswith(text[:end]):
            return text[:end]
    return ""


def cut_identifiers(texts: list[str], identifiers: IdentifierFinder) -> list[int]:
    """The indexes of the chunks, among a document's chunk ``texts`` in order, that hold part of an
    identifier cut in two by the chunker: a cut between two parts of one chunk, the cut between a
    chunk and the next, or an overlap starting inside an identifier. Empty for chunks made with
    ``identifiers`` (and for those of documents whose identifiers no cut happened to reach)."""
    cut: set[int] = set()
    for index, text in enumerate(texts):
        for match in re.finditer("\n\n", text):
            if _crossing(text[: match.start()], text[match.end() :], identifiers):
                cut.add(index)
        if index == 0:
            continue
        previous = texts[index - 1]
        carried = _carried(previous, text)
        rest = text[len(carried) + 2 :] if carried else text
        if _crossing(previous, rest, identifiers):
            cut.update((index - 1, index))
        if carried and _inside(
            _spans_near(previous, len(previous) - len(carried), identifiers.identifiers),
            len(previous) - len(carried),
        ):
            cut.update((index - 1, index))
    return sorted(cut)
