"""Parsing and chunking in a child process with a hard time limit.

A parser can get stuck inside a library (pypdf, lxml, python-docx) where no check of ours runs, and
it holds its memory until it returns. So ``document_process`` hands the file's bytes to a child
process, which parses and chunks them under :class:`~knowledge.ingest.limits.IngestLimits` and sends
back the passages; when the child has not answered within the time limit it is killed (SIGKILL),
and the document fails with the reason. The child never touches the database: it gets bytes and
returns plain data, so no database connection is ever forked.

Children come from a ``forkserver`` started once per worker process, which imports the parsers and
their libraries up front (``PRELOAD``), so each document costs a fork, not an interpreter start.
A child whose worker dies (even by ``kill -9``) exits at once: it watches a pipe only the worker
holds open. It also limits its own CPU time (``RLIMIT_CPU``) to the time limit plus a little, in case
a library holds the interpreter so that the watcher cannot run, and its memory (``RLIMIT_AS``) to the
memory limit: the upload limit does not bound what parsing costs (``<p>a</p>`` repeated needs about
135 times the file's size). A child over it, or killed by the kernel for memory, fails the document
with :meth:`~knowledge.ingest.limits.IngestLimits.memory_message`.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.ingest.chunker import ChunkData, chunk_blocks
from knowledge.ingest.limits import IngestLimits, LimitExceeded
from knowledge.ingest.parsers import DocumentKind, ParseError, parse

if TYPE_CHECKING:
    from knowledge.screening import IdentifierFinder

PRELOAD = [
    "knowledge.ingest.isolation",
    "knowledge.ingest.parsers",
    "knowledge.ingest.chunker",
    "pypdf",
    "docx",
    "bs4",
    "lxml.etree",
]

_context = None


def _get_context():
    global _context
    if _context is None:
        from knowledge.screening import identifier_finder

        context = multiprocessing.get_context("forkserver")
        # The identifier finder registered with knowledge reaches the child by reference: its module
        # is imported once by the forkserver rather than by every child.
        finder = identifier_finder()
        context.set_forkserver_preload(PRELOAD + ([type(finder).__module__] if finder is not None else []))
        _context = context
    return _context


@dataclass(frozen=True)
class ParsedChunks:
    """What the child sends back: the passages and the page count (PDF)."""

    chunks: list[ChunkData]
    page_count: int | None


def parse_and_chunk(
    data: bytes,
    kind: DocumentKind | str,
    *,
    limits: IngestLimits,
    chunk_size: int,
    chunk_overlap: int,
    identifiers: IdentifierFinder | None = None,
) -> ParsedChunks:
    """Parse and chunk in this process (what the child runs); raises ParseError / LimitExceeded.
    With ``identifiers`` no chunk is cut inside a client identifier (see ``chunk_blocks``)."""
    parsed = parse(data, kind, limits)
    chunks = chunk_blocks(parsed.blocks, size=chunk_size, overlap=chunk_overlap, identifiers=identifiers)
    if len(chunks) > limits.max_chunks:
        raise LimitExceeded(
            f"The file would make {len(chunks):,} passages; the limit is {limits.max_chunks:,}. "
            "Split it into smaller documents, or use a larger chunk size for this knowledge base."
        )
    return ParsedChunks(chunks, parsed.page_count)


def _exit_when_worker_dies(lifeline) -> None:
    """Block on the worker's end of the lifeline; its end closes when the worker ends, even by
    ``kill -9``, and then this child has nobody to answer: it exits at once."""
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(1)


def _limit_self(limits: IngestLimits) -> None:
    """Bound this child: CPU time, address space (``RLIMIT_AS``: an allocation past it fails, and
    Python raises MemoryError), and first in line for the kernel's out-of-memory killer, so that
    when the machine runs short it is this child that is killed, not the worker or the web server."""
    cpu = int(limits.timeout) + 5
    for which, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 5)),
        (resource.RLIMIT_AS, (limits.max_memory,) * 2),
    ):
        try:
            soft, hard = value
            current = resource.getrlimit(which)[1]
            if current != resource.RLIM_INFINITY:
                soft, hard = min(soft, current), min(hard, current)
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            pass  # a lower limit already applies
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass  # not Linux


def _out_of_memory(exc: BaseException) -> bool:
    """Whether the failure ``exc``, or what caused it, is an allocation that failed: MemoryError, or
    libxml2's ``ERR_NO_MEMORY``, which lxml reports as a syntax error ("unknown error")."""
    import lxml.etree

    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            break
        if isinstance(cause, MemoryError):
            return True
        if (
            isinstance(cause, lxml.etree.Error)
            and getattr(cause, "code", None) == lxml.etree.ErrorTypes.ERR_NO_MEMORY
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _child(connection, lifeline, data, kind, limits, chunk_size, chunk_overlap, identifiers) -> None:
    threading.Thread(target=_exit_when_worker_dies, args=(lifeline,), daemon=True).start()
    _limit_self(limits)
    failure: BaseException | None = None
    try:
        result = parse_and_chunk(
            data,
            kind,
            limits=limits,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            identifiers=identifiers,
        )
        outcome = ("ok", result)
    except LimitExceeded as exc:
        outcome = ("limit", str(exc))
    except MemoryError:
        outcome = ("limit", limits.memory_message())
    except ParseError as exc:
        failure, outcome = exc, ("error", str(exc))
    except Exception as exc:  # noqa: BLE001 - the parent reports any failure as a parse failure
        failure = exc
        outcome = ("error", f"The file could not be processed: {type(exc).__name__}: {exc}"[:500])
    if failure is not None and _out_of_memory(failure):
        # A library that ran out of memory reported it its own way.
        result = failure = None
        outcome = ("limit", limits.memory_message())
    try:
        try:
            connection.send(outcome)
        except MemoryError:  # the passages are parsed, but pickling them is over the limit
            result = outcome = None
            connection.send(("limit", limits.memory_message()))
    finally:
        connection.close()


def parse_and_chunk_isolated(
    data: bytes,
    kind: DocumentKind | str,
    *,
    limits: IngestLimits,
    chunk_size: int,
    chunk_overlap: int,
    identifiers: IdentifierFinder | None = None,
    timeout: float | None = None,
) -> ParsedChunks:
    """:func:`parse_and_chunk` in a child process killed after ``timeout`` seconds (the limits'
    time limit by default). Raises ParseError / LimitExceeded with the reason to show."""
    context = _get_context()
    timeout = limits.timeout if timeout is None else timeout
    receiver, sender = context.Pipe(duplex=False)
    lifeline, keepalive = context.Pipe(duplex=False)  # only this process holds ``keepalive``
    process = context.Process(
        target=_child,
        args=(
            sender,
            lifeline,
            data,
            str(DocumentKind(kind)),
            limits,
            chunk_size,
            chunk_overlap,
            identifiers,
        ),
        name="knowledge-parse",
        daemon=True,
    )
    process.start()
    sender.close()
    lifeline.close()
    outcome = None
    try:
        if receiver.poll(max(timeout, 0)):
            try:
                outcome = receiver.recv()
            except EOFError:
                outcome = None  # the child died without answering: see how, before killing it
                process.join(5)
        else:
            raise LimitExceeded(limits.timeout_message())
    finally:
        receiver.close()
        keepalive.close()
        if process.is_alive():
            process.kill()
        process.join(5)
    if outcome is None:
        if process.exitcode == -signal.SIGKILL:
            # Not by us (we kill only after an answer or at the time limit): the kernel's
            # out-of-memory killer, which picks this child first (``oom_score_adj``).
            raise LimitExceeded(limits.memory_message())
        if process.exitcode == -signal.SIGXCPU:
            raise LimitExceeded(limits.timeout_message())
        raise ParseError(
            f"The parser stopped without an answer (exit code {process.exitcode}): the file is damaged "
            "or needs more memory or time than the server allows."
        )
    status, value = outcome
    if status == "ok":
        return value
    if status == "limit":
        raise LimitExceeded(value)
    raise ParseError(value)
