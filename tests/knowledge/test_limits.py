"""Bounded ingestion: unpacked size, compression ratio, pages, passages and processing time, on real
files built here (zip bombs made with zipfile, PDFs with fpdf2), and documents that never stay
``processing`` when their worker stops."""

from __future__ import annotations

import datetime
import io
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from knowledge import services
from knowledge.ingest import DocumentKind, ParseError
from knowledge.ingest.isolation import parse_and_chunk_isolated
from knowledge.ingest.limits import (
    IngestLimits,
    LimitExceeded,
    archive_member_count,
    check_archive,
    human_size,
)
from knowledge.models import Chunk, Document, DocumentStatus
from tests.knowledge.conftest import make_docx, make_pdf
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def documents_url(kb) -> str:
    return f"/api/v1/knowledge-bases/{kb.pk}/documents/"


def docx_with_padding(padding: int, *, lie: bool = False) -> bytes:
    """A real .docx (python-docx) with an extra part of ``padding`` zero bytes, which deflate packs
    about a thousand to one. With ``lie`` every size the archive declares (central directory and
    local headers) is rewritten to 1 KB, as a crafted bomb would."""
    source = zipfile.ZipFile(io.BytesIO(make_docx([("h1", "Memo"), ("p", "Short memo text.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr("customXml/item9.xml", bytes(padding))
    data = buffer.getvalue()
    if lie:
        data = _declare_sizes(data, 1024)
    return data


def _declare_sizes(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of every entry, in the central directory and local headers."""
    patched = bytearray(data)
    for match in re.finditer(rb"PK\x01\x02", data):  # central directory: size at offset 24
        patched[match.start() + 24 : match.start() + 28] = struct.pack("<I", size)
    for match in re.finditer(rb"PK\x03\x04", data):  # local header: size at offset 22
        patched[match.start() + 22 : match.start() + 26] = struct.pack("<I", size)
    return bytes(patched)


def upload(name: str, data: bytes):
    return SimpleUploadedFile(name, data)


# --- Archives -----------------------------------------------------------------------------------


def test_docx_bomb_with_honest_sizes_is_refused_at_upload(editor_client, kb, settings):
    """The archive's directory declares what it unpacks to: the upload answers 400 at once with the
    size and the limit, and nothing is stored."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 2 * MB
    data = docx_with_padding(6 * MB)
    assert len(data) < 100 * 1024
    response = editor_client.post(documents_url(kb), {"file": upload("bomb.docx", data)}, format="multipart")
    body = assert_error(response, 400, fields=["file"])
    assert re.search(r"The file unpacks to 6(\.\d)? MB; the limit is 2 MB\.", body["errors"]["file"][0])
    assert not Document.objects.exists()


def test_docx_bomb_whose_sizes_lie_is_counted_while_streaming(editor_client, kb, settings):
    """Declared sizes of 1 KB pass the upload check; processing inflates the archive itself, stops
    at the limit and fails the document with what it found (201 first, then failed)."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 2 * MB
    data = docx_with_padding(6 * MB, lie=True)
    response = editor_client.post(documents_url(kb), {"file": upload("liar.docx", data)}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "failed" and body["chunk_count"] == 0
    assert re.fullmatch(
        r"The file unpacks to more than 2 MB \(its archive declares \d+(\.\d)? KB\); the limit is 2 MB\. "
        r"Split it into smaller documents\.",
        body["error"],
    ), body["error"]
    assert not Chunk.objects.exists()


def test_high_ratio_archive_under_the_size_limit_is_refused(kb, editor, settings):
    """Well under the size limit, a ratio of hundreds to one is refused by the ratio limit."""
    settings.KNOWLEDGE_MAX_COMPRESSION_RATIO = 100
    data = docx_with_padding(20 * MB)
    with pytest.raises(ValidationError) as refused:
        services.document_create(knowledge_base=kb, actor=editor, file=upload("dense.docx", data))
    message = refused.value.message_dict["file"][0]
    ratio = int(
        re.search(r"a compression ratio of ([\d,]+):1; the limit is 100:1\.", message)[1].replace(",", "")
    )
    assert ratio > 200 and re.search(r"unpacks \d+ KB into 2\d MB", message)


def test_lying_archive_over_the_ratio_is_stopped_by_the_real_count():
    """With sizes that lie, the ratio is measured on the bytes really inflated."""
    data = docx_with_padding(8 * MB, lie=True)
    with pytest.raises(LimitExceeded, match=r"a compression ratio of more than 100:1; the limit is 100:1"):
        check_archive(data, IngestLimits(max_compression_ratio=100))


def test_archive_check_never_holds_the_expansion_in_memory():
    """Counting what a 64 MB member inflates to keeps well under a megabyte of memory."""
    data = docx_with_padding(64 * MB, lie=True)
    tracemalloc.start()
    try:
        check_archive(data, IngestLimits(max_uncompressed_bytes=1024 * MB, max_compression_ratio=10**6))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MB, peak


def test_ordinary_docx_passes_the_archive_check(kb, editor):
    data = make_docx([("h1", "Transfer pricing"), ("p", "Keep a master file.")])
    check_archive(data, IngestLimits())
    document = services.document_create(knowledge_base=kb, actor=editor, file=upload("memo.docx", data))
    assert document.status == DocumentStatus.READY


def docx_with_members(extra: int) -> bytes:
    """A real .docx (python-docx) with ``extra`` more empty members, as a bomb of many parts is."""
    source = zipfile.ZipFile(io.BytesIO(make_docx([("h1", "Memo"), ("p", "Short memo text.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        for n in range(extra):
            archive.writestr(f"customXml/part{n}.xml", b"")
    return buffer.getvalue()


def test_archive_with_too_many_members_is_refused_at_upload(editor_client, kb, settings):
    """The member count is read from the archive's end record, before any ZipFile lists it: the
    upload answers 400 with the count and the limit, and nothing is stored."""
    settings.KNOWLEDGE_MAX_ARCHIVE_MEMBERS = 50
    data = docx_with_members(60)
    count = len(zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert count > 60
    response = editor_client.post(documents_url(kb), {"file": upload("parts.docx", data)}, format="multipart")
    body = assert_error(response, 400, fields=["file"])
    assert body["errors"]["file"] == [
        f"The file is an archive of {count} parts; the limit is 50. "
        "A Word file has a few dozen; save it again from its application."
    ]
    assert not Document.objects.exists()
    settings.KNOWLEDGE_MAX_ARCHIVE_MEMBERS = 5000
    response = editor_client.post(documents_url(kb), {"file": upload("parts.docx", data)}, format="multipart")
    assert response.status_code == 201 and response.json()["status"] == "ready", response.json()


def test_archive_whose_end_record_lies_about_its_count_is_still_refused(kb, editor, settings):
    """An end record that declares 1 member: the entries of the directory it points to are counted."""
    settings.KNOWLEDGE_MAX_ARCHIVE_MEMBERS = 50
    data = bytearray(docx_with_members(60))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 1, 1)  # entries on this disk, entries in total
    assert archive_member_count(bytes(data)) > 60
    with pytest.raises(ValidationError, match=r"The file is an archive of \d+ parts; the limit is 50\."):
        services.document_create(knowledge_base=kb, actor=editor, file=upload("liar.docx", bytes(data)))
    with pytest.raises(LimitExceeded, match=r"the limit is 50\."):
        check_archive(bytes(data), IngestLimits(max_archive_members=50))


def test_member_count_reads_zip64_end_records_and_ignores_other_files():
    """Past 65,535 members the count lives in the ZIP64 end record; a file that is no archive has none."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(70_000):
            archive.writestr(f"{n}", b"")
    data = buffer.getvalue()
    assert b"PK\x06\x06" in data[-200:]
    assert archive_member_count(data) == 70_000
    assert archive_member_count(b"%PDF-1.7 not an archive") is None
    assert archive_member_count(docx_with_members(0)) == len(
        zipfile.ZipFile(io.BytesIO(docx_with_members(0))).namelist()
    )


# --- Memory -------------------------------------------------------------------------------------


def html_needing_memory(size: int) -> bytes:
    """``<p>a</p>`` repeated: each 8 bytes become a tag, a string and a passage in the parse, so
    the parser needs about 135 times the file's size in memory."""
    return b"<html><body>" + b"<p>a</p>" * (size // 8) + b"</body></html>"


MEMORY_REASON = (
    "Processing the file needed more memory than the limit allows (200 MB). Split it into smaller documents."
)


def test_document_over_the_memory_limit_fails_with_the_reason(editor_client, kb, editor, settings):
    """A 3 MB HTML that needs about 400 MB to parse, under a 200 MB limit: the child's allocation
    fails (RLIMIT_AS), the document ends failed with the reason, and this process carries on."""
    settings.KNOWLEDGE_MAX_MEMORY_BYTES = 200 * MB
    data = html_needing_memory(3 * MB)
    response = editor_client.post(documents_url(kb), {"file": upload("dense.html", data)}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "failed" and body["chunk_count"] == 0
    assert body["error"] == MEMORY_REASON
    assert not Chunk.objects.exists()
    document = services.document_create(knowledge_base=kb, actor=editor, text="# Memo\n\nStill working.")
    assert document.status == DocumentStatus.READY


def test_word_file_of_tiny_paragraphs_over_the_memory_limit_fails_with_the_reason(kb, editor, settings):
    """libxml2 reports a failed allocation as a syntax error (``ERR_NO_MEMORY``), not MemoryError:
    a .docx of 600,000 empty-looking paragraphs still ends with the memory reason."""
    settings.KNOWLEDGE_MAX_MEMORY_BYTES = 200 * MB
    settings.KNOWLEDGE_MAX_COMPRESSION_RATIO = 10**6  # let the archive through to the parser
    source = zipfile.ZipFile(io.BytesIO(make_docx([("p", "x")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            part = source.read(info)
            if info.filename == "word/document.xml":
                part = part.replace(
                    b"<w:body>", b"<w:body>" + b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * 600_000
                )
            archive.writestr(info, part)
    document = services.document_create(
        knowledge_base=kb, actor=editor, file=upload("tiny.docx", buffer.getvalue())
    )
    assert document.status == DocumentStatus.FAILED
    assert document.error == MEMORY_REASON


def test_ordinary_documents_need_a_fraction_of_the_memory_limit(kb, editor, settings):
    """A 40-page PDF, a 40-page Word memo and 2 MB of HTML process under a 300 MB limit (the
    preloaded parsers themselves take about 150 MB of address space), far below the 2 GB default."""
    assert IngestLimits().max_memory == 2 * 1024 * MB
    settings.KNOWLEDGE_MAX_MEMORY_BYTES = 300 * MB
    para = "The reverse charge applies to services between businesses; the customer accounts for VAT. "
    files = {
        "report.pdf": make_pdf([para * 25 for _ in range(40)]),
        "memo.docx": make_docx([("h1" if n % 10 == 0 else "p", f"{n}. " + para * 4) for n in range(400)]),
        "guide.html": (
            "<html><body>"
            + "".join(f"<h2>Part {n}</h2><p>{para * 5}</p>" for n in range(4000))
            + "</body></html>"
        ).encode(),
    }
    for name, data in files.items():
        document = services.document_create(knowledge_base=kb, actor=editor, file=upload(name, data))
        assert document.status == DocumentStatus.READY, (name, document.error)
        assert document.chunk_count > 100


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc")
def test_parser_killed_by_the_kernel_reports_the_memory_reason():
    """The kernel's out-of-memory killer ends a process with SIGKILL, and picks the parser first
    (its ``oom_score_adj`` is 1000): a child killed so ends with the memory reason, not a crash."""
    limits = IngestLimits(timeout=60)  # 2 GB: this parse needs far less, so only the kill ends it
    outcome: list = []

    def parse_slowly():
        try:
            parse_and_chunk_isolated(
                slow_html(), "text/html", limits=limits, chunk_size=600, chunk_overlap=80
            )
        except Exception as exc:  # noqa: BLE001 - the test looks at what came back
            outcome.append(exc)

    thread = threading.Thread(target=parse_slowly)
    thread.start()
    parsers: list[int] = []
    adjusted = ""
    deadline = time.monotonic() + 30
    while adjusted != "1000" and time.monotonic() < deadline:
        time.sleep(0.1)
        table = _process_table()
        servers = [pid for pid, (parent, _) in table.items() if parent == os.getpid()]
        parsers = [pid for pid, (parent, _) in table.items() if parent in servers]
        if len(parsers) == 1:
            with open(f"/proc/{parsers[0]}/oom_score_adj") as handle:
                adjusted = handle.read().strip()
    assert adjusted == "1000", (parsers, adjusted)
    os.kill(parsers[0], signal.SIGKILL)
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], LimitExceeded), outcome
    assert str(outcome[0]) == (
        "Processing the file needed more memory than the limit allows (2 GB). Split it into smaller documents."
    )


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_with_too_many_pages_fails_with_the_count(editor_client, kb, settings):
    """The page count is checked before any page is read; the upload answers 201, then the document
    is failed with the count and the limit."""
    settings.KNOWLEDGE_MAX_PAGES = 5
    data = make_pdf([f"Page {n} of the manual." for n in range(1, 8)])
    response = editor_client.post(documents_url(kb), {"file": upload("manual.pdf", data)}, format="multipart")
    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    assert response.json()["error"] == "The PDF has 7 pages; the limit is 5. Split it into smaller documents."


def test_pdf_whose_compressed_pages_unpack_past_the_limit_fails(kb, editor, settings):
    """Page content streams are compressed too: what they unpack to is added up and stopped."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 40 * 1024
    data = make_pdf(["Reverse charge applies to services. " * 150 for _ in range(6)])
    assert len(data) < 40 * 1024
    document = services.document_create(knowledge_base=kb, actor=editor, file=upload("dense.pdf", data))
    assert document.status == DocumentStatus.FAILED
    assert re.fullmatch(
        r"The PDF unpacks to more than 40 KB \(by page \d\); the limit is 40 KB\. Split it into smaller documents\.",
        document.error,
    ), document.error


def pdf_with_stream_bomb(unpacked: int) -> bytes:
    """A one-page PDF whose content stream is ``unpacked`` spaces, Flate-compressed (a PDF bomb)."""
    stream = zlib.compress(b" " * unpacked, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_stream_bomb_is_stopped_by_the_reader_bound(kb, editor, settings):
    """One Flate stream that unpacks past the limit stops the reader there, not in memory later."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 1 * MB
    data = pdf_with_stream_bomb(50 * MB)
    assert len(data) < 100 * 1024
    document = services.document_create(knowledge_base=kb, actor=editor, file=upload("bomb.pdf", data))
    assert document.status == DocumentStatus.FAILED
    assert document.error.startswith("The PDF is over a safety limit of the PDF reader (")
    assert document.error.endswith(
        "what a file may unpack to is limited to 1 MB. Split it into smaller documents or print it to a new PDF."
    )


def test_isolated_parse_refuses_too_many_pages_and_sizes_read_well():
    data = make_pdf(["x"] * 3)
    with pytest.raises(LimitExceeded, match=r"^The PDF has 3 pages; the limit is 2\."):
        parse_and_chunk_isolated(
            data, DocumentKind.PDF, limits=IngestLimits(max_pages=2), chunk_size=600, chunk_overlap=80
        )
    assert human_size(620 * MB) == "620 MB" and human_size(1536 * 1024) == "1.5 MB"


# --- Passages and time -------------------------------------------------------------------------


def test_document_making_too_many_passages_fails_with_the_count(kb, editor, settings):
    settings.KNOWLEDGE_MAX_CHUNKS = 3
    text = "\n\n".join(f"Paragraph {n}. " + "Input VAT is deductible. " * 20 for n in range(10))
    document = services.document_create(knowledge_base=kb, actor=editor, text=text)
    assert document.status == DocumentStatus.FAILED
    assert re.fullmatch(
        r"The file would make (\d+) passages; the limit is 3\. Split it into smaller documents, "
        r"or use a larger chunk size for this knowledge base\.",
        document.error,
    ), document.error
    assert int(re.search(r"make (\d+)", document.error)[1]) >= 10
    assert not Chunk.objects.filter(document=document).exists()
    settings.KNOWLEDGE_MAX_CHUNKS = 20000
    assert services.document_reindex(document=document, actor=editor).status == DocumentStatus.READY


def slow_html() -> bytes:
    """16 MB of HTML: BeautifulSoup needs tens of seconds for it, far past a sub-second limit."""
    return b"<html><body>" + b"<p>Sampling rules apply.</p>" * 600_000 + b"</body></html>"


def test_parser_stuck_inside_a_library_is_killed_at_the_time_limit(kb, editor, settings):
    """The parse runs in a child process killed at the limit: the document fails within about the
    limit, not after the parse would have ended."""
    settings.KNOWLEDGE_PROCESSING_TIMEOUT = 0.5
    started = time.monotonic()
    document = services.document_create(
        knowledge_base=kb, actor=editor, file=upload("huge.html", slow_html())
    )
    elapsed = time.monotonic() - started
    assert document.status == DocumentStatus.FAILED
    assert document.error == (
        "The file took longer than 0.5 s to process; the limit is 0.5 s. Split it into smaller documents."
    )
    assert elapsed < 10, elapsed


def test_isolated_parse_reports_parse_errors_and_results():
    """The child returns the passages, and a parse failure comes back as the same ParseError."""
    result = parse_and_chunk_isolated(
        b"# Title\n\nBody text.",
        DocumentKind.MARKDOWN,
        limits=IngestLimits(),
        chunk_size=600,
        chunk_overlap=80,
    )
    assert [c.text for c in result.chunks] == ["Body text."]
    assert result.chunks[0].heading_path == "Title"
    with pytest.raises(ParseError, match="could not be read"):
        parse_and_chunk_isolated(
            b"%PDF-1.4\n garbage", DocumentKind.PDF, limits=IngestLimits(), chunk_size=600, chunk_overlap=80
        )


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc (Linux)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields[0])
    return table


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc")
def test_parser_exits_when_its_worker_is_killed():
    """A worker killed with SIGKILL while its child parses leaves no parser running on: the child
    watches a pipe only the worker holds and exits when it closes."""
    code = (
        "from knowledge.ingest.isolation import parse_and_chunk_isolated\n"
        "from knowledge.ingest.limits import IngestLimits\n"
        "html = b'<html><body>' + b'<p>Sampling rules apply.</p>' * 600_000 + b'</body></html>'\n"
        "parse_and_chunk_isolated(html, 'text/html', limits=IngestLimits(), chunk_size=600, chunk_overlap=80)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2])
    parsers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not parsers and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
            table = _process_table()
            servers = [pid for pid, (parent, _) in table.items() if parent == worker.pid]
            parsers = [pid for pid, (parent, _) in table.items() if parent in servers]
        assert parsers, "the parser child never started"
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            table = _process_table()
            running = [pid for pid in parsers if pid in table and table[pid][1] != "Z"]
            if not running:
                break
            time.sleep(0.2)
        assert not running, "the parser outlived its worker"
    finally:
        if worker.poll() is None:
            worker.kill()
        for pid in parsers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- Never stuck in processing -----------------------------------------------------------------


def _processing_since(document: Document, seconds: float) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.PROCESSING, updated_at=timezone.now() - datetime.timedelta(seconds=seconds)
    )


def test_documents_stuck_in_processing_past_the_limit_are_failed(kb, editor, settings):
    """A worker killed mid-document (no signal, no task update) leaves it processing; past the
    limit plus the margin it is failed with the reason and without passages. A document within its
    time, or ready, is left alone; the management command does the same."""
    settings.KNOWLEDGE_PROCESSING_TIMEOUT = 60
    stuck = services.document_create(knowledge_base=kb, actor=editor, text="Stuck memo on audits.")
    recent = services.document_create(knowledge_base=kb, actor=editor, text="Recent memo on VAT.")
    ready = services.document_create(knowledge_base=kb, actor=editor, text="Finished memo on tax.")
    _processing_since(stuck, 60 + services.STUCK_MARGIN.total_seconds() + 5)
    _processing_since(recent, 60)
    assert services.document_fail_stuck() == [stuck.pk]
    stuck.refresh_from_db(), recent.refresh_from_db(), ready.refresh_from_db()
    assert stuck.status == DocumentStatus.FAILED and stuck.chunk_count == 0
    assert stuck.error == (
        "Processing stopped without finishing: the document was still processing after 180 s "
        "(the limit is 60 s), so the worker that processed it stopped. Reindex the document to try again."
    )
    assert not Chunk.objects.filter(document=stuck).exists()
    assert recent.status == DocumentStatus.PROCESSING
    assert ready.status == DocumentStatus.READY

    _processing_since(recent, 500)
    out = io.StringIO()
    call_command("fail_stuck_documents", stdout=out)
    assert out.getvalue().strip() == f"Marked 1 stuck document(s) failed: {recent.pk}."
    call_command("fail_stuck_documents", stdout=out)
    assert out.getvalue().strip().endswith("No document is stuck in processing.")


def test_each_document_task_first_fails_the_stuck_ones(kb, editor):
    stuck = services.document_create(knowledge_base=kb, actor=editor, text="Left behind by a dead worker.")
    _processing_since(stuck, 3600)
    services.document_create(knowledge_base=kb, actor=editor, text="A new upload runs the task.")
    stuck.refresh_from_db()
    assert stuck.status == DocumentStatus.FAILED and "Processing stopped without finishing" in stuck.error


def test_worker_stopped_mid_document_fails_it_through_the_task_signal(kb, editor, settings):
    """django-tasks-db's worker, told twice to stop while a document is being parsed, ends the task
    FAILED and sends ``task_finished``; the document is failed with the reason instead of staying
    processing."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    document = services.document_create(
        knowledge_base=kb, actor=editor, file=upload("huge.html", slow_html())
    )
    assert document.status == DocumentStatus.PENDING
    task_result = DBTaskResult.objects.get()
    task_result.claim("test-worker")
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    worker.configure_signals()
    # Two separate deliveries: the first asks for a graceful stop, the second ends the task.
    stops = [threading.Timer(delay, os.kill, (os.getpid(), signal.SIGTERM)) for delay in (1.0, 1.5)]
    try:
        for stop in stops:
            stop.start()
        started = time.monotonic()
        worker.run_task(task_result)
        elapsed = time.monotonic() - started
    finally:
        for stop in stops:
            stop.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    task_result.refresh_from_db()
    assert task_result.status == "FAILED" and task_result.exception_class_path == "builtins.SystemExit"
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED
    assert (
        document.error
        == "Processing stopped before it finished (SystemExit: 1). Reindex the document to try again."
    )
    assert elapsed < 10, elapsed


def test_failed_task_leaves_a_finished_document_as_it_is(kb, editor):
    document = services.document_create(knowledge_base=kb, actor=editor, text="Done already.")
    assert not services.document_fail_unfinished(document_id=document.pk, reason="late failure")
    document.refresh_from_db()
    assert document.status == DocumentStatus.READY and document.error == ""
