"""Knowledge bases, documents and chunks."""

from __future__ import annotations

from datetime import date

import pytest

from knowledge.models import Chunk, Document, KnowledgeBase
from tests.factories import ChunkFactory, DocumentFactory, KnowledgeBaseFactory
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid

pytestmark = pytest.mark.django_db


def test_knowledge_base_name_is_unique_per_organization(org, other_org):
    """One organisation cannot have two knowledge bases with one name."""
    KnowledgeBaseFactory(organization=org, name="EU VAT guidance")
    assert_db_rejects(lambda: KnowledgeBase.objects.create(organization=org, name="EU VAT guidance"))
    assert_conflict(
        KnowledgeBase(organization=org, name="EU VAT guidance"),
        "A knowledge base with this name already exists in this organisation.",
        field="name",
    )
    KnowledgeBase(organization=other_org, name="EU VAT guidance").full_clean()


def test_chunk_overlap_below_chunk_size(org):
    """An overlap as large as the chunk itself would never advance: refused."""
    assert_db_rejects(
        lambda: KnowledgeBase.objects.create(organization=org, name="K", chunk_size=500, chunk_overlap=500)
    )
    assert_invalid(
        KnowledgeBase(organization=org, name="K", chunk_size=500, chunk_overlap=600),
        "The chunk overlap must be smaller than the chunk size.",
    )
    KnowledgeBase(organization=org, name="K", chunk_size=500, chunk_overlap=499).full_clean()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("chunk_size", 199, "greater than or equal to 200"),
        ("chunk_size", 8001, "less than or equal to 8000"),
        ("chunk_overlap", 2001, "less than or equal to 2000"),
    ],
)
def test_chunking_bounds(org, field, value, message):
    """Chunk size is 200–8000 characters and overlap at most 2000."""
    values = {"chunk_size": 8000, "chunk_overlap": 100, field: value}
    assert_invalid(KnowledgeBase(organization=org, name="K", **values), message, field=field)


def test_same_content_once_per_knowledge_base(org):
    """A document with the same sha256 cannot be added twice to one knowledge base; to another, yes."""
    doc = DocumentFactory(knowledge_base=KnowledgeBaseFactory(organization=org))
    make = lambda: Document(knowledge_base=doc.knowledge_base, title="Copy", sha256=doc.sha256)  # noqa: E731
    assert_db_rejects(lambda: make().save())
    assert_conflict(make(), "This file is already in the knowledge base.", field="sha256")
    Document(
        knowledge_base=KnowledgeBaseFactory(organization=org), title="Copy", sha256=doc.sha256
    ).full_clean()


def test_document_status_must_be_known(org):
    """Documents are pending, processing, ready or failed."""
    kb = KnowledgeBaseFactory(organization=org)
    assert_db_rejects(
        lambda: Document.objects.create(knowledge_base=kb, title="T", sha256="a" * 64, status="done")
    )
    assert_invalid(
        Document(knowledge_base=kb, title="T", sha256="a" * 64, status="done"),
        "Value 'done' is not a valid choice.",
        field="status",
    )


def test_document_source_must_be_known(org):
    """Documents come from an upload, a text or a URL."""
    kb = KnowledgeBaseFactory(organization=org)
    assert_db_rejects(
        lambda: Document.objects.create(knowledge_base=kb, title="T", sha256="c" * 64, source="fax")
    )
    assert_invalid(
        Document(knowledge_base=kb, title="T", sha256="c" * 64, source="fax"),
        "Value 'fax' is not a valid choice.",
        field="source",
    )


def test_effective_period_cannot_end_before_it_starts(org):
    """effective_to before effective_from is refused; an open-ended or one-day period is fine."""
    kb = KnowledgeBaseFactory(organization=org)
    values = {"knowledge_base": kb, "title": "T", "sha256": "b" * 64}
    backwards = {"effective_from": date(2025, 1, 1), "effective_to": date(2024, 12, 31)}
    assert_db_rejects(lambda: Document.objects.create(**values, **backwards))
    assert_invalid(
        Document(**values, **backwards),
        "The end of the effective period cannot be before its start.",
        field="effective_to",
    )
    Document(**values, effective_from=date(2025, 1, 1), effective_to=date(2025, 1, 1)).full_clean()
    Document(**values, effective_from=date(2025, 1, 1)).full_clean()


def test_chunk_ordinal_unique_per_document():
    """Each chunk of a document has its own ordinal."""
    chunk = ChunkFactory()
    assert_db_rejects(lambda: Chunk.objects.create(document=chunk.document, ordinal=chunk.ordinal, text="x"))


def test_deleting_a_document_deletes_its_chunks():
    """Chunks belong to their document and go with it."""
    chunk = ChunkFactory()
    chunk.document.delete()
    assert not Chunk.objects.filter(pk=chunk.pk).exists()
