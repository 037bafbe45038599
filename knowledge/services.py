"""Writes to knowledge bases and documents: validation, ingestion, indexing, audit.

Every mutation goes through here, whichever door it comes through (API, admin, ``seed_demo``).
Uploads are checked at once (type, size, emptiness, encryption, duplicates) and refused with a
``ValidationError`` that says why; accepted documents are processed in the background
(``knowledge.tasks.process_document``) by :func:`document_process`, which replaces a document's chunks
in one transaction, so a search sees either the old index or the new one, never half of one.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from knowledge.ingest import DocumentKind, ParseError, UnsupportedDocument, detect
from knowledge.ingest.isolation import parse_and_chunk_isolated
from knowledge.ingest.limits import IngestLimits, LimitExceeded, check_declared_sizes
from knowledge.models import Chunk, Document, DocumentSource, DocumentStatus, KnowledgeBase
from knowledge.screening import identifier_finder, passage_screen
from knowledge.search import postgres
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict

logger = logging.getLogger(__name__)

# The text-search configurations PostgreSQL ships; on PostgreSQL the server's own list is checked.
POSTGRES_SEARCH_CONFIGS = frozenset(
    "simple arabic armenian basque catalan danish dutch english finnish french german greek hindi "
    "hungarian indonesian irish italian lithuanian nepali norwegian portuguese romanian russian "
    "serbian spanish swedish tamil turkish yiddish".split()
)
KNOWLEDGE_BASE_FIELDS = ("name", "description", "chunk_size", "chunk_overlap", "search_config")
DOCUMENT_FIELDS = ("title", "jurisdiction", "effective_from", "effective_to", "metadata")


class DuplicateDocument(ConflictError):
    """The same content (sha256) is already in the knowledge base; ``existing`` is that document.

    A ``ValidationError`` (admin forms show it on the file field) that the API answers with 409."""

    def __init__(self, existing: Document):
        self.existing = existing
        super().__init__(
            {
                "file": [
                    ValidationError(
                        f'This file is already in the knowledge base as "{existing.title}" '
                        f"(document {existing.pk}, {existing.get_status_display().lower()}).",
                        code="duplicate",
                    )
                ]
            }
        )


def _document_snapshot(document: Document) -> dict:
    """``snapshot`` of a document, with the stored file as its name (a FieldFile is not JSON)."""
    data = snapshot(document, exclude=("file",))
    data["file"] = document.file.name if document.file else ""
    return data


def max_upload_bytes() -> int:
    return int(getattr(settings, "KNOWLEDGE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))


def ingest_limits() -> IngestLimits:
    """The ingestion limits from the settings (``KNOWLEDGE_MAX_UNCOMPRESSED_BYTES`` and the others;
    see the README), read at each use so that a test or an operator's change applies at once."""
    defaults = IngestLimits()
    return IngestLimits(
        max_uncompressed_bytes=int(
            getattr(settings, "KNOWLEDGE_MAX_UNCOMPRESSED_BYTES", defaults.max_uncompressed_bytes)
        ),
        max_compression_ratio=float(
            getattr(settings, "KNOWLEDGE_MAX_COMPRESSION_RATIO", defaults.max_compression_ratio)
        ),
        max_pages=int(getattr(settings, "KNOWLEDGE_MAX_PAGES", defaults.max_pages)),
        max_chunks=int(getattr(settings, "KNOWLEDGE_MAX_CHUNKS", defaults.max_chunks)),
        timeout=float(getattr(settings, "KNOWLEDGE_PROCESSING_TIMEOUT", defaults.timeout)),
        max_memory=int(getattr(settings, "KNOWLEDGE_MAX_MEMORY_BYTES", defaults.max_memory)),
        max_archive_members=int(
            getattr(settings, "KNOWLEDGE_MAX_ARCHIVE_MEMBERS", defaults.max_archive_members)
        ),
    )


#: How long past the processing time limit a document may stay ``processing`` before
#: :func:`document_fail_stuck` decides that its worker is gone: storing and screening the passages
#: comes after the time-limited parse.
STUCK_MARGIN = datetime.timedelta(minutes=2)


def _human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


# --- Knowledge bases ----------------------------------------------------------------------------


def _validate_search_config(name: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            ok = postgres.config_exists(cursor, name)
    else:
        ok = name in POSTGRES_SEARCH_CONFIGS
    if not ok:
        raise ValidationError(
            {"search_config": f"Unknown text-search configuration '{name}' (e.g. english, german, simple)."}
        )


@retry_on_conflict
def knowledge_base_create(
    *,
    organization,
    actor,
    name: str,
    description: str = "",
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    search_config: str = "english",
) -> KnowledgeBase:
    """Create a knowledge base in ``organization`` (audited)."""
    knowledge_base = KnowledgeBase(
        organization=organization, name=name, description=description, search_config=search_config
    )
    if chunk_size is not None:
        knowledge_base.chunk_size = chunk_size
    if chunk_overlap is not None:
        knowledge_base.chunk_overlap = chunk_overlap
    knowledge_base.full_clean()
    _validate_search_config(knowledge_base.search_config)
    with transaction.atomic():
        lock_for_write(organization=organization)
        knowledge_base.save()
        audit_record(
            organization=organization,
            action="knowledge_base.create",
            actor=actor,
            obj=knowledge_base,
            after=snapshot(knowledge_base),
        )
    return knowledge_base


def knowledge_base_update(*, knowledge_base: KnowledgeBase, actor, **changes) -> KnowledgeBase:
    """Change a knowledge base (audited).

    A new search configuration rebuilds the index vectors at once (PostgreSQL); a new chunk size or
    overlap re-processes every document in the background.
    """
    unknown = set(changes) - set(KNOWLEDGE_BASE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown knowledge base field(s): {', '.join(sorted(unknown))}.")
    before = snapshot(knowledge_base)

    def validate(knowledge_base: KnowledgeBase) -> None:
        knowledge_base.full_clean()
        if knowledge_base.search_config != before["search_config"]:
            _validate_search_config(knowledge_base.search_config)

    with transaction.atomic():
        lock_for_write(organization=knowledge_base.organization_id)
        audited_update(
            knowledge_base,
            organization=knowledge_base.organization,
            actor=actor,
            action="knowledge_base.update",
            fields=changes,
            validate=validate,
        )
        after = snapshot(knowledge_base)
        if after["search_config"] != before["search_config"] and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                postgres.refresh_vectors(cursor, knowledge_base.pk)
        if (after["chunk_size"], after["chunk_overlap"]) != (before["chunk_size"], before["chunk_overlap"]):
            for document in knowledge_base.documents.exclude(status=DocumentStatus.PENDING):
                _enqueue_processing(document)
    return knowledge_base


@retry_on_conflict
def knowledge_base_delete(*, knowledge_base: KnowledgeBase, actor) -> None:
    """Delete a knowledge base with its documents and their files (audited).

    Raises ``ProtectedError`` while an agent still uses it.
    """
    files = [d.file.name for d in knowledge_base.documents.exclude(file="").only("file")]
    with transaction.atomic():
        lock_for_write(organization=knowledge_base.organization_id)
        audit_record(
            organization=knowledge_base.organization,
            action="knowledge_base.delete",
            actor=actor,
            obj=knowledge_base,
            before=snapshot(knowledge_base),
        )
        knowledge_base.delete()
        transaction.on_commit(lambda: _delete_files(files))


@retry_on_conflict
def knowledge_base_reindex(*, knowledge_base: KnowledgeBase, actor) -> KnowledgeBase:
    """Re-process every document of the knowledge base in the background (audited)."""
    with transaction.atomic():
        lock_for_write(organization=knowledge_base.organization_id)
        audit_record(
            organization=knowledge_base.organization,
            action="knowledge_base.reindex",
            actor=actor,
            obj=knowledge_base,
        )
        for document in knowledge_base.documents.only("pk"):
            _enqueue_processing(document)
    return knowledge_base


# --- Documents ----------------------------------------------------------------------------------


def _delete_files(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("Could not delete document file %s", name)


def _read_upload(file) -> tuple[bytes, str]:
    """Bytes and file name of an upload, refusing oversized files before reading them whole."""
    limit = max_upload_bytes()
    size = getattr(file, "size", None)
    if size is not None and size > limit:
        raise ValidationError(
            {"file": f"The file is too large ({_human_size(size)}); the limit is {_human_size(limit)}."}
        )
    if hasattr(file, "seek"):
        try:
            file.seek(0)
        except (OSError, ValueError):
            pass
    data = file.read(limit + 1)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > limit:
        raise ValidationError({"file": f"The file is too large; the limit is {_human_size(limit)}."})
    return data, PurePath(getattr(file, "name", "") or "").name


_EXTENSIONS = {
    DocumentKind.TEXT: ".txt",
    DocumentKind.MARKDOWN: ".md",
    DocumentKind.HTML: ".html",
    DocumentKind.PDF: ".pdf",
    DocumentKind.DOCX: ".docx",
}


def _stored_name(filename: str, sha256: str, kind: DocumentKind) -> str:
    """The name a file is stored under, in its knowledge base's folder: the upload's name reduced
    to letters, digits, ``-`` and ``_`` (no dot, so never ``..``, and no separator), the start of
    its hash, and the extension of the type its content was detected as — never the extension or
    path the uploader gave (ASVS 5.0 V5.3.2). ``document`` when nothing of the name is left."""
    stem = re.sub(r"[^\w-]", "", PurePath(filename).stem.strip().replace(" ", "_"))[:80] or "document"
    return f"{stem}-{sha256[:12]}{_EXTENSIONS[kind]}"


def _title_from(filename: str, data: bytes, kind: DocumentKind) -> str:
    if filename:
        stem = PurePath(filename).stem
        return re.sub(r"[_]+", " ", stem).strip()[:300] or "Untitled document"
    if kind in (DocumentKind.TEXT, DocumentKind.MARKDOWN):
        for line in data.decode("utf-8", errors="replace").splitlines():
            line = line.strip().lstrip("#").strip()
            if line:
                return line[:120]
    return "Untitled document"


def document_create(
    *,
    knowledge_base: KnowledgeBase,
    actor,
    title: str | None = None,
    file=None,
    text: str | None = None,
    jurisdiction: str = "",
    effective_from: datetime.date | None = None,
    effective_to: datetime.date | None = None,
    metadata: dict | None = None,
) -> Document:
    """Add a document from an uploaded ``file`` or from ``text`` (Markdown or plain), then enqueue its
    processing (audited).

    Raises ``ValidationError`` — at once, before anything is stored — for a missing or double source,
    an unsupported type, an empty, encrypted or oversized file, and :class:`DuplicateDocument` when
    the same content is already in the knowledge base.
    """
    if (file is None) == (text is None):
        raise ValidationError({"file": "Provide either a file or a text, not both and not neither."})
    if file is not None:
        data, filename = _read_upload(file)
        source = DocumentSource.UPLOAD
        try:
            kind = detect(data, filename, ingest_limits())
            if kind == DocumentKind.DOCX:
                # What the archive declares is known at once; what it really unpacks to is counted
                # when it is processed (declared sizes can lie).
                check_declared_sizes(data, ingest_limits())
        except UnsupportedDocument as exc:
            raise ValidationError({"file": str(exc)}, code="unsupported")
        except LimitExceeded as exc:
            raise ValidationError({"file": str(exc)}, code="limit")
    else:
        data = text.encode("utf-8")
        if len(data) > max_upload_bytes():
            raise ValidationError(
                {"text": f"The text is too large; the limit is {_human_size(max_upload_bytes())}."}
            )
        if not text.strip():
            raise ValidationError({"text": "The text is empty."})
        filename = ""
        source = DocumentSource.TEXT
        kind = DocumentKind.MARKDOWN
    sha256 = hashlib.sha256(data).hexdigest()
    existing = Document.objects.filter(knowledge_base=knowledge_base, sha256=sha256).first()
    if existing is not None:
        raise DuplicateDocument(existing)

    document = Document(
        knowledge_base=knowledge_base,
        title=(title or "").strip() or _title_from(filename, data, kind),
        source=source,
        sha256=sha256,
        mime_type=kind.value,
        size_bytes=len(data),
        status=DocumentStatus.PENDING,
        jurisdiction=(jurisdiction or "").strip().upper(),
        effective_from=effective_from,
        effective_to=effective_to,
        metadata=metadata or {},
        uploaded_by=actor if isinstance(actor, get_user_model()) else None,
    )
    if filename:
        document.metadata.setdefault("filename", filename)
    document.full_clean(exclude=["file", "sha256"], validate_constraints=False)
    stored_name = _stored_name(filename, sha256, kind)
    try:
        with transaction.atomic():
            lock_for_write(organization=knowledge_base.organization_id)
            document.file.save(stored_name, ContentFile(data), save=False)
            document.save()
            audit_record(
                organization=knowledge_base.organization,
                action="document.create",
                actor=actor,
                obj=document,
                after=_document_snapshot(document),
            )
            _enqueue_processing(document)
    except IntegrityError:
        existing = Document.objects.filter(knowledge_base=knowledge_base, sha256=sha256).first()
        if existing is not None:
            raise DuplicateDocument(existing)
        raise
    document.refresh_from_db()
    return document


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one file of a multi-file upload: a document, or the reason it was refused."""

    filename: str
    document: Document | None = None
    error: str = ""
    duplicate_of: Document | None = None

    @property
    def ok(self) -> bool:
        return self.document is not None


def document_create_many(
    *,
    knowledge_base: KnowledgeBase,
    actor,
    files,
    jurisdiction: str = "",
    effective_from: datetime.date | None = None,
    effective_to: datetime.date | None = None,
) -> list[UploadOutcome]:
    """Add several uploaded files at once (the admin's multi-file upload).

    Each file is validated and stored on its own, so one refused file (wrong type, empty, duplicate…)
    does not stop the others; the outcome of every file is returned in order.
    """
    outcomes: list[UploadOutcome] = []
    for file in files:
        filename = PurePath(getattr(file, "name", "") or "").name
        try:
            document = document_create(
                knowledge_base=knowledge_base,
                actor=actor,
                file=file,
                jurisdiction=jurisdiction,
                effective_from=effective_from,
                effective_to=effective_to,
            )
        except DuplicateDocument as exc:
            outcomes.append(UploadOutcome(filename, error=" ".join(exc.messages), duplicate_of=exc.existing))
        except ValidationError as exc:
            outcomes.append(UploadOutcome(filename, error=" ".join(exc.messages)))
        else:
            outcomes.append(UploadOutcome(filename, document=document))
    return outcomes


def document_update(*, document: Document, actor, **changes) -> Document:
    """Change a document's title, jurisdiction, effective dates or metadata (audited)."""
    unknown = set(changes) - set(DOCUMENT_FIELDS)
    if unknown:
        raise ValidationError(f"These document fields cannot be changed: {', '.join(sorted(unknown))}.")
    if "jurisdiction" in changes:
        changes["jurisdiction"] = (changes["jurisdiction"] or "").strip().upper()
    with transaction.atomic():
        lock_for_write(organization=document.knowledge_base.organization_id)
        return audited_update(
            document,
            organization=document.knowledge_base.organization,
            actor=actor,
            action="document.update",
            fields=changes,
            validate=lambda document: document.full_clean(exclude=["file"]),
            snapshot_of=_document_snapshot,
        )


@retry_on_conflict
def document_reindex(*, document: Document, actor) -> Document:
    """Process the document again (audited): parse, chunk and replace its index."""
    with transaction.atomic():
        lock_for_write(organization=document.knowledge_base.organization_id)
        audit_record(
            organization=document.knowledge_base.organization,
            action="document.reindex",
            actor=actor,
            obj=document,
        )
        _enqueue_processing(document)
    document.refresh_from_db()
    return document


@retry_on_conflict
def document_delete(*, document: Document, actor) -> None:
    """Delete a document, its chunks (and so its index entries) and its stored file (audited)."""
    name = document.file.name if document.file else ""
    with transaction.atomic():
        lock_for_write(organization=document.knowledge_base.organization_id)
        audit_record(
            organization=document.knowledge_base.organization,
            action="document.delete",
            actor=actor,
            obj=document,
            before=_document_snapshot(document),
        )
        document.delete()
        if name:
            transaction.on_commit(lambda: _delete_files([name]))


def _enqueue_processing(document: Document) -> None:
    """Queue the processing task. Called inside the caller's transaction: with the database task
    backend the task row commits together with the document, so a worker never sees one without the
    other; with the immediate backend (tests) the document is processed right here."""
    from knowledge.tasks import process_document  # the tasks call these services: the one lazy side

    process_document.enqueue(document_id=document.pk)


def _read_source(document: Document) -> bytes:
    if not document.file:
        raise ParseError("The document has no stored file to process.")
    try:
        with document.file.open("rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError) as exc:
        raise ParseError(f"The stored file could not be read ({type(exc).__name__}).")


def _fail(document_id: int, reason: str) -> None:
    """Mark the document failed and remove any index it had: no stale or partial passages."""
    with transaction.atomic():
        Chunk.objects.filter(document_id=document_id).delete()
        Document.objects.filter(pk=document_id).update(
            status=DocumentStatus.FAILED,
            error=reason[:2000],
            chunk_count=0,
            processed_at=timezone.now(),
            updated_at=timezone.now(),
        )


def document_process(document: Document | int) -> Document | None:
    """Parse, chunk and index a document now (what the background task runs).

    On success the document's chunks are replaced in one transaction and it becomes ``ready``; if
    the file cannot be parsed, or is over an ingestion limit (:func:`ingest_limits`: unpacked size,
    compression ratio, pages, passages, processing time), it becomes ``failed`` with the reason in
    ``error`` and has no chunks. Parsing and chunking run in a child process that is killed at the
    time limit (``knowledge.ingest.isolation``), so a parser stuck inside a library cannot hold the
    worker. Returns the refreshed document, or None when it no longer exists.
    """
    started = time.monotonic()
    document_id = document.pk if isinstance(document, Document) else int(document)
    updated = Document.objects.filter(pk=document_id).update(
        status=DocumentStatus.PROCESSING, error="", updated_at=timezone.now()
    )
    if not updated:
        return None
    document = Document.objects.select_related("knowledge_base").get(pk=document_id)
    knowledge_base = document.knowledge_base
    limits = ingest_limits()
    try:
        data = _read_source(document)
        parsed = parse_and_chunk_isolated(
            data,
            document.mime_type or detect(data, document.file.name),
            limits=limits,
            chunk_size=knowledge_base.chunk_size,
            chunk_overlap=knowledge_base.chunk_overlap,
            identifiers=identifier_finder(),
            timeout=limits.timeout - (time.monotonic() - started),
        )
        pieces = parsed.chunks
        if not pieces:
            raise ParseError("No text could be extracted from the file.")
        screenings = []  # before the transaction: it is CPU work, and it counts against the time limit
        for piece in pieces:
            if time.monotonic() - started > limits.timeout:
                raise LimitExceeded(limits.timeout_message())
            screenings.append(passage_screen(text=piece.text))
    except (ParseError, UnsupportedDocument, ValueError) as exc:
        _fail(document_id, str(exc))
        logger.info("Document %s failed to process: %s", document_id, exc)
        return Document.objects.filter(pk=document_id).first()

    try:
        with transaction.atomic():
            # Lock the row so two workers processing the same document serialise here.
            locked = Document.objects.select_for_update().filter(pk=document_id).first()
            if locked is None:
                return None
            Chunk.objects.filter(document_id=document_id).delete()
            Chunk.objects.bulk_create(
                [
                    Chunk(
                        document_id=document_id,
                        ordinal=ordinal,
                        text=piece.text,
                        token_count=piece.token_count,
                        page=piece.page,
                        heading_path=piece.heading_path,
                        screening=screening,
                    )
                    for ordinal, (piece, screening) in enumerate(zip(pieces, screenings, strict=True))
                ],
                batch_size=500,
            )
            now = timezone.now()
            Document.objects.filter(pk=document_id).update(
                status=DocumentStatus.READY,
                error="",
                chunk_count=len(pieces),
                page_count=parsed.page_count,
                processed_at=now,
                updated_at=now,
            )
    except Exception as exc:
        logger.exception("Indexing document %s failed", document_id)
        _fail(document_id, f"Indexing failed: {type(exc).__name__}: {exc}"[:2000])
        return Document.objects.filter(pk=document_id).first()
    return Document.objects.select_related("knowledge_base").get(pk=document_id)


def document_fail_stuck(*, now: datetime.datetime | None = None) -> list[int]:
    """Fail every document ``processing`` for longer than the processing time limit plus
    :data:`STUCK_MARGIN`: its worker died (killed, out of memory, machine lost) without finishing.

    The document ends ``failed`` with the reason and without passages, as after any failure, and
    can be reindexed. Run by every ``process_document`` task before it starts and by
    ``manage.py fail_stuck_documents``; returns the ids of the documents it failed.
    """
    limits = ingest_limits()
    allowed = datetime.timedelta(seconds=limits.timeout) + STUCK_MARGIN
    cutoff = (now or timezone.now()) - allowed
    failed: list[int] = []
    stuck = Document.objects.filter(status=DocumentStatus.PROCESSING, updated_at__lt=cutoff)
    for document_id in stuck.values_list("pk", flat=True):
        reason = (
            f"Processing stopped without finishing: the document was still processing after "
            f"{allowed.total_seconds():g} s (the limit is {limits.timeout:g} s), so the worker that "
            "processed it stopped. Reindex the document to try again."
        )
        if _fail_if(document_id, reason, DocumentStatus.PROCESSING, updated_before=cutoff):
            failed.append(document_id)
            logger.warning("Document %s was stuck in processing; marked failed", document_id)
    return failed


def document_fail_unfinished(*, document_id: int, reason: str) -> bool:
    """Fail a document still ``pending`` or ``processing`` whose processing task itself failed
    (its worker was stopped, or the task queue gave up on it); a ``ready`` or ``failed`` document
    is left as it is. Returns whether it was failed."""
    done = _fail_if(document_id, reason, DocumentStatus.PENDING, DocumentStatus.PROCESSING)
    if done:
        logger.warning("Document %s failed with its processing task: %s", document_id, reason)
    return done


def _fail_if(document_id: int, reason: str, *statuses: str, updated_before=None) -> bool:
    """:func:`_fail` the document only while it is in one of ``statuses`` (and, with
    ``updated_before``, unchanged since then): a worker that finishes meanwhile wins."""
    with transaction.atomic():
        rows = Document.objects.select_for_update().filter(pk=document_id, status__in=statuses)
        if updated_before is not None:
            rows = rows.filter(updated_at__lt=updated_before)
        if not list(rows.values_list("pk", flat=True)[:1]):
            return False
        _fail(document_id, reason)
    return True
