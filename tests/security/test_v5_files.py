"""ASVS 5.0 level 2, chapter V5 (File Handling), for the one place Prisma Glow takes files: documents
uploaded into a knowledge base, through the API (``POST /api/v1/knowledge-bases/{id}/documents/``,
one file) and the staff UI (a knowledge base's page, several files at once).

Every test goes through a real door with real files built here (PDFs with fpdf2, Word files with
python-docx, ZIP archives with zipfile) and looks at what was stored: rows, and files under a
temporary ``MEDIA_ROOT``. docs/security.md ("V5 File handling") maps each requirement to its tests
and says what is out of scope. The ingestion limits' own behaviour in depth (lying archives, PDF
streams, memory, time) is tested in tests/knowledge/test_limits.py.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test import Client

from knowledge.ingest.parsers import SUPPORTED_EXTENSIONS
from knowledge.models import Chunk, Document, DocumentStatus
from tests.factories import AgentFactory, KnowledgeBaseFactory
from tests.knowledge.conftest import make_docx, make_pdf
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

KB = 1024
MB = 1024 * KB
REPOSITORY = Path(__file__).resolve().parents[2]
# The name of every file stored for a document: letters, digits, "-" or "_", the start of the
# content's hash, and the extension of the type detected from the content.
STORED_NAME = re.compile(r"[\w-]+-[0-9a-f]{12}\.(txt|md|html|pdf|docx)")


@pytest.fixture(autouse=True)
def _knowledge_settings(settings, tmp_path):
    """Documents are processed at once, and stored under a media root of their own."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


@pytest.fixture
def kb(org):
    return KnowledgeBaseFactory(organization=org, name="Firm guidance")


def api_url(kb) -> str:
    return f"/api/v1/knowledge-bases/{kb.pk}/documents/"


def admin_url(kb) -> str:
    return f"/admin/knowledge/knowledgebase/{kb.pk}/documents/"


def api_upload(client, kb, name: str, data: bytes):
    return client.post(api_url(kb), {"file": SimpleUploadedFile(name, data)}, format="multipart")


def admin_upload(client, kb, files: dict[str, bytes]):
    """POST several files to the knowledge base's page; returns the response and its text, entities
    decoded and in lower case (the page capitalises each message's first letter)."""
    response = client.post(
        admin_url(kb), {"files": [SimpleUploadedFile(name, data) for name, data in files.items()]}
    )
    return response, html.unescape(response.content.decode()).lower()


def stored_files(settings) -> list[Path]:
    """Every file under the media root, relative to it."""
    root = Path(settings.MEDIA_ROOT)
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def docx_with_padding(padding: int) -> bytes:
    """A real .docx with an extra part of ``padding`` zero bytes (deflate packs them ~1000:1), whose
    directory honestly declares what it unpacks to."""
    source = zipfile.ZipFile(io.BytesIO(make_docx([("h1", "Memo"), ("p", "Short memo.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr("customXml/item9.xml", bytes(padding))
    return buffer.getvalue()


def docx_with_extra_members(names: list[str], content: bytes = b"") -> bytes:
    """A real .docx with extra members of the given names (any path, ``../`` included)."""
    source = zipfile.ZipFile(io.BytesIO(make_docx([("h1", "Memo"), ("p", "Engagement memo.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        for name in names:
            archive.writestr(name, content)
    return buffer.getvalue()


# --- V5.1 File handling documentation ----------------------------------------------------------


def _v5_block() -> str:
    text = (REPOSITORY / "docs" / "security.md").read_text(encoding="utf-8")
    start = text.index("### V5 File handling")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_v5_1_1_the_documented_file_policy_is_the_one_in_force(staff_client, kb):
    """ASVS 5.0 V5.1.1: the documentation (docs/security.md, "V5 File handling") names every file
    extension the upload accepts, every size limit (upload, unpacked size, compression ratio, archive
    members, pages) by its setting, and what happens to a malicious file; the staff UI's file input
    offers exactly the accepted extensions. A type or limit added without documenting it fails here."""
    block = _v5_block()
    for extension in SUPPORTED_EXTENSIONS:
        assert f"`{extension}`" in block, f"{extension} is accepted but not documented"
    for setting in (
        "PRISMA_GLOW_MAX_UPLOAD_BYTES",
        "PRISMA_GLOW_INGEST_MAX_UNCOMPRESSED_BYTES",
        "PRISMA_GLOW_INGEST_MAX_COMPRESSION_RATIO",
        "PRISMA_GLOW_INGEST_MAX_ARCHIVE_MEMBERS",
        "PRISMA_GLOW_INGEST_MAX_PAGES",
        "DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE",
    ):
        assert setting in block, f"{setting} is not documented in the V5 block"
    assert "malicious" in block.lower()
    page = staff_client.get(admin_url(kb)).content.decode()
    accept = re.search(r'accept="([^"]*)"', page)[1]
    assert sorted(accept.split(",")) == sorted(SUPPORTED_EXTENSIONS)


# --- V5.2 File upload and content ----------------------------------------------------------------


def test_v5_2_1_an_oversized_file_is_refused_through_both_doors_and_nothing_is_stored(
    editor_client, staff_client, kb, settings
):
    """ASVS 5.0 V5.2.1: a file over ``KNOWLEDGE_MAX_UPLOAD_BYTES`` is refused at once — 400 with the
    size and the limit through the API, the same reason on the staff page — and neither a document
    nor a file is stored; a file at the limit is accepted."""
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 4 * KB
    big = b"Transfer pricing memo. " * 200  # 4.5 KB
    body = assert_error(api_upload(editor_client, kb, "memo.txt", big), 400, fields=["file"])
    assert body["errors"]["file"] == ["The file is too large (4.5 KB); the limit is 4.0 KB."]
    response, page = admin_upload(staff_client, kb, {"memo.txt": big})
    assert response.status_code == 400
    assert "memo.txt: the file is too large (4.5 kb); the limit is 4.0 kb." in page
    assert not Document.objects.exists() and stored_files(settings) == []
    at_limit = api_upload(editor_client, kb, "memo.txt", big[: 4 * KB])
    assert at_limit.status_code == 201, at_limit.json()


def test_v5_2_1_the_api_refuses_a_body_past_the_limit_before_reading_it(editor_client, kb, settings):
    """ASVS 5.0 V5.2.1: a multipart body whose Content-Length is past the document limit plus
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is answered 413 ``request_too_large`` without reading it: the
    body sent here is far shorter than the length it claims (10 GB), and reading past it would fail
    the test client's request."""
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 4 * KB
    response = editor_client.post(
        api_url(kb),
        {"file": SimpleUploadedFile("memo.txt", b"short memo")},
        format="multipart",
        CONTENT_LENGTH=str(10 * 1024 * MB),
    )
    assert assert_error(response, 413)["code"] == "request_too_large"
    assert not Document.objects.exists()


_largest_stored: list[int] = []


class MeasuringTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's own handler that writes uploads to temporary files, noting how much of each file it
    was given to store."""

    def file_complete(self, file_size):
        _largest_stored.append(file_size)
        return super().file_complete(file_size)


def test_v5_2_1_the_staff_upload_stores_no_file_past_the_limit_while_receiving_it(staff_client, kb, settings):
    """ASVS 5.0 V5.2.1: the staff page takes several files in one request, so its body cannot be
    refused by its length; each file is counted as it arrives and nothing of it past
    ``KNOWLEDGE_MAX_UPLOAD_BYTES`` reaches the temporary file Django writes (a 1 MB file stores at
    most the 64 KB limit), it is refused with its real size, and the other file is added."""
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 64 * KB
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every file goes to a temporary file on disk
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.MeasuringTemporaryFileUploadHandler"]
    _largest_stored.clear()
    huge = b"Padding to fill the server's disk. " * (MB // 35 + 1)
    response, page = admin_upload(staff_client, kb, {"huge.txt": huge, "memo.txt": b"A short memo."})
    assert response.status_code == 400
    assert "huge.txt: the file is too large (1.0 mb); the limit is 64.0 kb." in page
    assert max(_largest_stored) <= 64 * KB, _largest_stored
    assert [d.title for d in kb.documents.all()] == ["memo"]


def test_v5_2_1_the_staff_upload_still_checks_the_csrf_token(editor, kb):
    """ASVS 5.0 V5.2.1's upload bound runs before the CSRF check, which the page then makes itself
    (V3.5.1 stays met): a POST without the token is refused with 403 and stores nothing; with the
    page's token it is accepted."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    refused = client.post(admin_url(kb), {"files": [SimpleUploadedFile("memo.txt", b"A memo.")]})
    assert refused.status_code == 403 and not Document.objects.exists()
    client.get(admin_url(kb))
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    accepted = client.post(
        admin_url(kb), {"files": [SimpleUploadedFile("memo.txt", b"A memo.")], "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302 and Document.objects.count() == 1


MISMATCHES = [
    ("report.txt", lambda: make_pdf(["Quarterly report."]), "named .txt but its content is a PDF document"),
    ("invoice.exe", lambda: make_pdf(["Invoice."]), "named .exe but its content is a PDF document"),
    ("memo.md", lambda: make_docx([("p", "Memo.")]), "named .md but its content is a Word (.docx)"),
    ("macro.docm", lambda: make_docx([("p", "Memo.")]), "named .docm but its content is a Word (.docx)"),
    ("scan.pdf", lambda: b"Plain text, not a PDF.", "named .pdf but its content is not a PDF"),
    ("letter.docx", lambda: b"Plain text, not Word.", "named .docx but its content is not a Word"),
    ("photo.txt", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "binary content"),
    ("tool.md", lambda: b"MZ\x90\x00\x03\x00\x00\x00" + bytes(64), "binary content"),
    ("shell.php", lambda: b"<?php system($_GET['c']); ?>", "Unsupported file type '.php'"),
    ("archive.zip", lambda: docx_with_extra_members([]), "named .zip but its content is a Word (.docx)"),
]


@pytest.mark.parametrize(("name", "make", "reason"), MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_v5_2_2_a_file_whose_extension_and_content_disagree_is_refused_by_the_api(
    editor_client, kb, settings, name, make, reason
):
    """ASVS 5.0 V5.2.2: the content decides the type (PDF and Word by their signature and structure,
    text by having no binary bytes) and the name's extension must be one of that type's: a PDF named
    .txt or .exe, a Word file named .md or .docm, text named .pdf, an image or program named as text,
    an unsupported extension — each is refused with 400 saying why, and nothing is stored."""
    body = assert_error(api_upload(editor_client, kb, name, make()), 400, fields=["file"])
    assert reason in body["errors"]["file"][0], body
    assert not Document.objects.exists() and stored_files(settings) == []


def test_v5_2_2_the_staff_upload_applies_the_same_check_file_by_file(staff_client, kb):
    """ASVS 5.0 V5.2.2 through the staff UI: in one upload, each mismatched file is listed with its
    reason and the matching files are added, typed by their content."""
    files = {name: make() for name, make, _ in MISMATCHES}
    files |= {"manual.pdf": make_pdf(["VAT manual."]), "memo.docx": make_docx([("p", "Memo text.")])}
    response, page = admin_upload(staff_client, kb, files)
    assert response.status_code == 400
    for name, _, reason in MISMATCHES:
        assert re.search(rf"{re.escape(name.lower())}: [^<]*{re.escape(reason.lower())}", page), name
    assert sorted(kb.documents.values_list("mime_type", flat=True)) == [
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ]


@pytest.mark.parametrize(
    ("name", "make", "mime_type"),
    [
        ("manual.pdf", lambda: make_pdf(["VAT manual."]), "application/pdf"),
        ("Manual.PDF", lambda: make_pdf(["VAT manual, upper case."]), "application/pdf"),
        ("memo.docx", lambda: make_docx([("p", "Memo.")]), SUPPORTED_EXTENSIONS[".docx"].value),
        ("notes.md", lambda: b"# Notes\n\nReverse charge.", "text/markdown"),
        ("page.html", lambda: b"<html><body><p>Rates</p></body></html>", "text/html"),
        ("rates.csv", lambda: b"country,rate\nDE,19\n", "text/plain"),
        ("plain.txt", lambda: b"Plain text.", "text/plain"),
    ],
)
def test_v5_2_2_a_file_whose_extension_matches_its_content_is_accepted(
    editor_client, kb, name, make, mime_type
):
    """ASVS 5.0 V5.2.2: files whose extension is their content's type are accepted and processed."""
    response = api_upload(editor_client, kb, name, make())
    assert response.status_code == 201, response.json()
    assert response.json()["mime_type"] == mime_type and response.json()["status"] == "ready"


def test_v5_2_3_an_archive_over_the_unpacked_size_is_refused_before_it_is_unpacked(
    editor_client, staff_client, kb, settings
):
    """ASVS 5.0 V5.2.3: a Word file (a ZIP archive) whose directory declares more than
    ``KNOWLEDGE_MAX_UNCOMPRESSED_BYTES`` is refused at upload from its directory alone (a 6 MB
    expansion in a file of a few KB), through both doors, and nothing is stored."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 2 * MB
    bomb = docx_with_padding(6 * MB)
    assert len(bomb) < 100 * KB
    body = assert_error(api_upload(editor_client, kb, "bomb.docx", bomb), 400, fields=["file"])
    assert re.match(r"The file unpacks to 6(\.\d)? MB; the limit is 2 MB\.", body["errors"]["file"][0])
    response, page = admin_upload(staff_client, kb, {"bomb.docx": bomb})
    assert response.status_code == 400 and "bomb.docx: the file unpacks to 6" in page
    assert not Document.objects.exists() and stored_files(settings) == []


def test_v5_2_3_an_archive_with_too_many_members_is_refused_before_it_is_listed(editor_client, kb, settings):
    """ASVS 5.0 V5.2.3: a Word file with more members than ``KNOWLEDGE_MAX_ARCHIVE_MEMBERS`` is
    refused at upload with the count (read from the archive's end record) and the limit."""
    settings.KNOWLEDGE_MAX_ARCHIVE_MEMBERS = 40
    data = docx_with_extra_members([f"customXml/part{n}.xml" for n in range(40)])
    count = len(zipfile.ZipFile(io.BytesIO(data)).infolist())
    body = assert_error(api_upload(editor_client, kb, "parts.docx", data), 400, fields=["file"])
    assert body["errors"]["file"][0].startswith(f"The file is an archive of {count} parts; the limit is 40.")
    assert not Document.objects.exists() and stored_files(settings) == []


def test_v5_2_3_an_archive_whose_sizes_lie_is_stopped_while_it_is_inflated(editor_client, kb, settings):
    """ASVS 5.0 V5.2.3: an archive that declares 1 KB per member passes the upload check, and then
    processing inflates it in a stream, stops at the limit and fails the document with the reason,
    without passages."""
    settings.KNOWLEDGE_MAX_UNCOMPRESSED_BYTES = 2 * MB
    data = bytearray(docx_with_padding(6 * MB))
    for match in re.finditer(rb"PK\x01\x02", bytes(data)):  # central directory: size at offset 24
        data[match.start() + 24 : match.start() + 28] = (1 * KB).to_bytes(4, "little")
    for match in re.finditer(rb"PK\x03\x04", bytes(data)):  # local headers: size at offset 22
        data[match.start() + 22 : match.start() + 26] = (1 * KB).to_bytes(4, "little")
    response = api_upload(editor_client, kb, "liar.docx", bytes(data))
    assert response.status_code == 201, response.json()
    document = Document.objects.get()
    assert document.status == DocumentStatus.FAILED
    assert document.error.startswith("The file unpacks to more than 2 MB")
    assert not Chunk.objects.exists()


# --- V5.3 File storage ----------------------------------------------------------------------------


def test_v5_3_1_uploaded_files_are_not_served_and_keep_a_data_extension(
    editor_client, staff_client, kb, settings
):
    """ASVS 5.0 V5.3.1: stored documents are never served, so never run: no URL maps to the media
    root (a GET of the stored file's path is 404, signed in or not), and a file is stored under the
    extension of the type its content was detected as (.txt for a script-like text), never one the
    uploader chose."""
    script = b"<?php system($_GET['c']); ?>\n#!/bin/sh\nrm -rf /\n"
    assert api_upload(editor_client, kb, "run.txt", script).status_code == 201
    page = b"<html><script>alert(1)</script><p>x</p></html>"
    assert api_upload(editor_client, kb, "page.html", page).status_code == 201
    for document in Document.objects.all():
        assert STORED_NAME.fullmatch(Path(document.file.name).name), document.file.name
        url = f"/{django_settings.MEDIA_URL.strip('/')}/{document.file.name}"
        assert (Path(settings.MEDIA_ROOT) / document.file.name).is_file()
        for client in (Client(), staff_client):
            assert client.get(url).status_code == 404, url


TRAVERSALS = [
    "../../../../../../tmp/prisma-glow-v5-escape.txt",
    "..\\..\\..\\escape.txt",
    "...txt",
    "..txt",
    "a/../../escape.txt",
    "%2e%2e%2fescape.txt",
    "<img src=x onerror=alert(1)>.txt",
    "réunion d'équipe.txt",
    "\u202etxt.exe.txt",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_v5_3_2_the_stored_path_is_built_from_internal_data_whatever_the_name(
    editor_client, kb, org, settings, tmp_path, name
):
    """ASVS 5.0 V5.3.2: the file's path is the organisation's and knowledge base's ids, the name
    reduced to letters, digits, "-" and "_", the content's hash and the detected type's extension:
    a name with ``../``, backslashes, dots only, markup or control characters is accepted as a
    document and stored inside the knowledge base's folder, and nothing is written anywhere else."""
    before = {p for p in tmp_path.rglob("*") if "media" not in p.parts}
    response = api_upload(editor_client, kb, name, f"Memo uploaded as {name!r}.".encode())
    assert response.status_code == 201, response.json()
    stored = stored_files(settings)
    assert len(stored) == 1
    assert stored[0].parent == Path("documents", str(org.pk), str(kb.pk))
    assert STORED_NAME.fullmatch(stored[0].name), stored[0]
    assert {p for p in tmp_path.rglob("*") if "media" not in p.parts} == before
    assert not Path("/tmp/prisma-glow-v5-escape.txt").exists()


def test_v5_3_2_the_staff_upload_takes_any_name_without_failing_the_others(staff_client, kb, settings):
    """ASVS 5.0 V5.3.2 through the staff UI: names made of dots (which a file-name helper refuses)
    are stored under a name of their own, and the files beside them in the upload are kept."""
    response, page = admin_upload(staff_client, kb, {"...txt": b"Dots only.", "memo.txt": b"A memo."})
    assert response.status_code == 302, page
    assert kb.documents.count() == 2
    assert all(STORED_NAME.fullmatch(p.name) for p in stored_files(settings))


def test_v5_3_3_archive_members_named_with_a_path_are_never_extracted(editor_client, kb, tmp_path):
    """ASVS 5.0 V5.3.3 (level 3, met): a Word file's members are read in memory, never written out,
    so members named ``../../…`` (zip slip) or with an absolute path create no file; the document is
    processed from its text as usual."""
    target = tmp_path / "zip-slip.txt"
    names = ["../" * 12 + str(target).lstrip("/"), str(target), "word/../../zip-slip.txt"]
    response = api_upload(editor_client, kb, "memo.docx", docx_with_extra_members(names, b"owned"))
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "ready"
    assert not target.exists() and not (tmp_path.parent / "zip-slip.txt").exists()


# --- V5.4 File download ---------------------------------------------------------------------------


def test_v5_4_1_and_v5_4_2_no_door_serves_a_document_and_its_name_is_shown_encoded(
    editor_client, staff_client, kb
):
    """ASVS 5.0 V5.4.1 and V5.4.2: no door returns an uploaded file or puts its name in a header:
    the API's document, list and passages are JSON without a file URL or Content-Disposition, the
    staff pages link to no stored file, and a name with markup is shown escaped (and in the API as
    a JSON string)."""
    name = "<img src=x onerror=alert(1)>.txt"
    created = api_upload(editor_client, kb, name, b"A memo whose name carries markup.")
    assert created.status_code == 201, created.json()
    document = Document.objects.get()
    api_responses = [
        created,
        editor_client.get(api_url(kb)),
        editor_client.get(f"{api_url(kb)}{document.pk}/"),
        editor_client.get(f"{api_url(kb)}{document.pk}/chunks/"),
    ]
    for response in api_responses:
        assert response.status_code in (200, 201)
        assert response["Content-Type"] == "application/json"
        assert "Content-Disposition" not in response
        assert document.file.name not in response.content.decode()
    assert created.json()["file_name"] == name and "file" not in created.json()
    pages = [
        staff_client.get(admin_url(kb)),
        staff_client.get(f"/admin/knowledge/document/{document.pk}/change/"),
        staff_client.get("/admin/knowledge/document/"),
    ]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200 and "Content-Disposition" not in response
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert django_settings.MEDIA_URL not in html and document.file.name not in html


def test_v5_4_1_the_one_download_names_its_file_itself(staff_client, org):
    """ASVS 5.0 V5.4.1 and V5.4.2: the product's one download, the agents list as CSV, takes no
    file name from the request: its Content-Disposition names ``agents.csv``, quoted."""
    agent = AgentFactory(organization=org, name='Agent"; filename="evil.html')
    response = staff_client.post(
        "/admin/agents/agent/", {"action": "export_csv", "_selected_action": [agent.pk]}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="agents.csv"'
    assert response["Content-Type"].startswith("text/csv")


def test_v5_3_1_no_route_serves_the_media_root_in_development_either(settings):
    """ASVS 5.0 V5.3.1: with DJANGO_DEBUG on (``make run``), the URL configuration still maps nothing
    to the media root: a stored document's path resolves to no view."""
    import importlib

    from django.urls import Resolver404, resolve

    import prisma_glow.urls

    settings.DEBUG = True
    urls = importlib.reload(prisma_glow.urls)
    with pytest.raises(Resolver404):
        resolve(f"/{settings.MEDIA_URL.strip('/')}/documents/report-0123456789ab.txt", urls)
