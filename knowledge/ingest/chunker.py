"""Structure-aware chunking: sections first, then paragraphs, then sentences.

A heading closes the current chunk, so a passage never straddles two sections and its heading path
says where it comes from; so does a new page (PDF), so that a chunk's page is where its text is. Inside a section, paragraphs are packed up to ``size`` characters; when a
section needs several chunks, each repeats the last ``overlap`` characters of the previous one (cut at
a word boundary) so that a sentence split between them is still found whole. A paragraph longer than
``size`` is split at sentence ends, and a sentence longer than ``size`` at word boundaries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.ingest.parsers import Block

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


def _split_long(text: str, size: int) -> list[str]:
    """Pieces of at most ``size`` characters, cut at sentence ends, else at spaces, else hard."""
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > size:
            cut = sentence.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            head, sentence = sentence[:cut].rstrip(), sentence[cut:].lstrip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        if not sentence:
            continue
        if current and len(current) + 1 + len(sentence) > size:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces


def _tail(text: str, overlap: int) -> str:
    """The last ``overlap`` characters of ``text``, starting at a word boundary."""
    if overlap <= 0 or not text:
        return ""
    if len(text) <= overlap:
        return text
    tail = text[-overlap:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail


def chunk_blocks(blocks: Iterable[Block], *, size: int = 1200, overlap: int = 150) -> list[ChunkData]:
    """Cut parsed blocks into chunks of about ``size`` characters with ``overlap`` between them."""
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
        tail = _tail(previous, overlap)
        if tail:
            # The page of a chunk is where its new text starts, not where the carried overlap was.
            parts, length, carried_only = [tail], len(tail), True

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
        for piece in _split_long(block.text, budget):
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
