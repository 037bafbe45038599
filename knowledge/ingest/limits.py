"""Bounds on what one document may cost to ingest, and the archive check that enforces them.

An upload is small (``KNOWLEDGE_MAX_UPLOAD_BYTES``) but what it unpacks to need not be: a 1.46 MB
.docx unpacked to 620 MB and made 600,000 passages. :class:`IngestLimits` carries the bounds
(uncompressed size, compression ratio, pages, passages, processing time) into the parsers, which
run in a child process without Django (``knowledge.ingest.isolation``), so this module is plain
Python. Every refusal is a :class:`LimitExceeded` whose message says what the file needs and what the
limit is ("unpacks to 620 MB; the limit is 200 MB").
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from knowledge.ingest.errors import ParseError


class LimitExceeded(ParseError):
    """The file is over an ingestion limit; the message names the measure and the limit."""


@dataclass(frozen=True)
class IngestLimits:
    """The bounds one document's processing must stay within (see the README's settings)."""

    max_uncompressed_bytes: int = 200 * 1024 * 1024
    max_compression_ratio: float = 100.0
    max_pages: int = 2000
    max_chunks: int = 20000
    timeout: float = 300.0
    max_memory: int = 2 * 1024 * 1024 * 1024
    max_archive_members: int = 5000

    def timeout_message(self) -> str:
        return (
            f"The file took longer than {self.timeout:g} s to process; the limit is {self.timeout:g} s. "
            "Split it into smaller documents."
        )

    def memory_message(self) -> str:
        return (
            f"Processing the file needed more memory than the limit allows ({human_size(self.max_memory)}). "
            "Split it into smaller documents."
        )


def human_size(size: float) -> str:
    """``620 MB``, ``1.5 MB``, ``900 KB``, ``12 bytes`` (binary units, as the limits are set)."""
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024 or unit == "TB":
            text = f"{size:.0f}" if size >= 10 else f"{size:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def _too_large(size: int, limits: IngestLimits, *, more_than: bool = False, declared: int | None = None):
    measured = f"more than {human_size(size)}" if more_than else human_size(size)
    said = f" (its archive declares {human_size(declared)})" if declared is not None else ""
    return LimitExceeded(
        f"The file unpacks to {measured}{said}; the limit is {human_size(limits.max_uncompressed_bytes)}. "
        "Split it into smaller documents."
    )


def _ratio_too_high(unpacked: int, packed: int, limits: IngestLimits, *, more_than: bool = False):
    ratio = unpacked / max(packed, 1)
    more = "more than " if more_than else ""
    return LimitExceeded(
        f"The file unpacks {human_size(packed)} into {more}{human_size(unpacked)}, "
        f"a compression ratio of {more}{ratio:,.0f}:1; the limit is {limits.max_compression_ratio:g}:1. "
        "Such a file is almost always made to exhaust the server; save it again from its application."
    )


_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END_SIGNATURE = b"PK\x05\x06"
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_DIRECTORY_SIGNATURE = b"PK\x01\x02"


def archive_member_count(data: bytes) -> int | None:
    """How many members a ZIP archive holds, from its end-of-central-directory record (ZIP64 too),
    without building a :class:`zipfile.ZipFile` (which makes an object per member). The count a
    record declares can lie, so entry signatures in the directory it points to are counted as well
    and the larger number is returned. None when no end record is found (not a readable archive)."""
    position = data.rfind(_END_SIGNATURE, max(0, len(data) - _END.size - 65535))
    if position < 0 or position + _END.size > len(data):
        return None
    fields = _END.unpack_from(data, position)
    count, directory_size, directory_end = fields[4], fields[5], position
    locator = position - _END64_LOCATOR.size
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        record = locator - _END64.size
        if record >= 0 and data[record : record + 4] == b"PK\x06\x06":
            fields64 = _END64.unpack_from(data, record)
            count, directory_size, directory_end = fields64[7], fields64[8], record
    directory_start = max(0, directory_end - directory_size)
    return max(count, data.count(_DIRECTORY_SIGNATURE, directory_start, directory_end))


def check_member_count(data: bytes, limits: IngestLimits) -> None:
    """Refuse a ZIP archive with more members than ``limits.max_archive_members``, before anything
    builds a ZipFile for it (20 MB of empty members is 225,000 of them: 2 s and 118 MB to list)."""
    count = archive_member_count(data)
    if count is not None and count > limits.max_archive_members:
        raise LimitExceeded(
            f"The file is an archive of {count:,} parts; the limit is {limits.max_archive_members:,}. "
            "A Word file has a few dozen; save it again from its application."
        )


def check_declared_sizes(data: bytes, limits: IngestLimits) -> None:
    """Refuse a ZIP archive with too many members, or whose central directory already declares
    more than the limits allow.

    Reads only the directory (nothing is decompressed), so it is cheap enough to run at upload.
    """
    check_member_count(data, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        return  # a damaged archive is reported by the parser
    if declared > limits.max_uncompressed_bytes:
        raise _too_large(declared, limits)
    if declared > limits.max_compression_ratio * len(data):
        raise _ratio_too_high(declared, len(data), limits)


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_READ = 64 * 1024


def check_archive(data: bytes, limits: IngestLimits, *, what: str = "archive") -> None:
    """Check a ZIP archive (a .docx) against the limits before any parser expands it.

    First the sizes its central directory declares; then, because declared sizes can lie, every
    member is inflated from its own data in a stream, 64 KB at a time, counting the bytes it really
    produces and stopping as soon as the total passes the size or ratio limit. Nothing is kept in
    memory: the expanded data is counted and dropped. Raises :class:`LimitExceeded` or, for an
    archive that is not readable, :class:`ParseError`.
    """
    check_declared_sizes(data, limits)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ParseError(f"The {what} is damaged: {exc}.") from exc
    declared = sum(info.file_size for info in infos)
    budget = min(limits.max_uncompressed_bytes, int(limits.max_compression_ratio * len(data)))
    total = 0
    for info in infos:
        total += _member_size(data, info, budget - total, what=what)
        if total > budget:
            if budget == limits.max_uncompressed_bytes:
                raise _too_large(budget, limits, more_than=True, declared=declared)
            raise _ratio_too_high(budget, len(data), limits, more_than=True)


def _member_size(data: bytes, info: zipfile.ZipInfo, budget: int, *, what: str) -> int:
    """The real inflated size of one member, read from its local header onwards (not from the size
    the directory declares), counting no further than ``budget`` + one read."""
    offset = info.header_offset
    header = data[offset : offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise ParseError(f"The {what} is damaged: the entry {info.filename!r} has no local header.")
    fields = _LOCAL_HEADER.unpack(header)
    method, name_length, extra_length = fields[3], fields[9], fields[10]
    start = offset + _LOCAL_HEADER.size + name_length + extra_length
    if method == zipfile.ZIP_STORED:
        # Stored data cannot grow: it is at most what the archive itself holds.
        return min(info.compress_size, max(len(data) - start, 0))
    if method != zipfile.ZIP_DEFLATED:
        raise ParseError(
            f"The {what} uses a compression method (#{method}) that is not read here; "
            "save the document again from its application."
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    position = start
    pending = b""
    draining = False  # the last call filled its output: zlib may hold more without new input
    while produced <= budget and not inflater.eof:
        if not pending and not draining:
            if position >= len(data):
                break
            pending = data[position : position + _READ]
            position += len(pending)
        try:
            out = inflater.decompress(pending, _READ)
        except zlib.error as exc:
            raise ParseError(f"The {what} is damaged: {info.filename!r} cannot be inflated ({exc}).") from exc
        pending = inflater.unconsumed_tail
        draining = len(out) == _READ
        produced += len(out)
    return produced
