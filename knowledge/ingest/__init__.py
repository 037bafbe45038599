"""Turning uploaded files into structured text and then into chunks.

``detect(data, filename)`` recognises the format (and refuses what cannot be ingested) at upload;
``parse(data, kind)`` returns a :class:`ParsedDocument` of blocks (headings and paragraphs with their
page) during processing; ``chunk_blocks`` cuts the blocks into passages for the index.
"""

from knowledge.ingest.chunker import ChunkData, chunk_blocks
from knowledge.ingest.parsers import (
    Block,
    DocumentKind,
    ParsedDocument,
    ParseError,
    UnsupportedDocument,
    detect,
    parse,
)

__all__ = [
    "Block",
    "ChunkData",
    "DocumentKind",
    "ParseError",
    "ParsedDocument",
    "UnsupportedDocument",
    "chunk_blocks",
    "detect",
    "parse",
]
