"""Reads of knowledge that several doors share (API, admin, runtime): keyword-only ``<entity>_<verb>``
functions returning querysets, so that a read is written once. Writes are in ``services.py``; search is
``knowledge.search.search``."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from knowledge.ingest.chunker import cut_identifiers
from knowledge.models import Chunk, Document, DocumentStatus, KnowledgeBase
from knowledge.screening import IdentifierFinder


def knowledge_base_list_with_counts(
    *, queryset: QuerySet[KnowledgeBase] | None = None
) -> QuerySet[KnowledgeBase]:
    """Knowledge bases (``queryset``, all by default) with ``document_count`` and ``chunk_count``
    (0 for a knowledge base without documents) in the same query."""
    queryset = KnowledgeBase.objects.all() if queryset is None else queryset
    return queryset.annotate(
        document_count=Count("documents", distinct=True),
        chunk_count=Coalesce(Sum("documents__chunk_count"), Value(0)),
    )


def document_list_cutting_identifiers(
    *, identifiers: IdentifierFinder, queryset: QuerySet[Document] | None = None
) -> Iterator[tuple[Document, list[int]]]:
    """The documents (``queryset``, all by default) whose stored chunks cut a client identifier in two
    — chunked before the chunker kept identifiers whole — each with the ordinals of the chunks holding
    a part (``knowledge.ingest.chunker.cut_identifiers``). Only ``ready`` documents: one being processed
    is being chunked anew. Reads the chunks one document at a time."""
    queryset = Document.objects.all() if queryset is None else queryset
    documents = queryset.filter(status=DocumentStatus.READY, chunk_count__gt=0)
    documents = documents.select_related("knowledge_base").order_by("pk")
    for document in documents.iterator(chunk_size=200):
        chunks = list(
            Chunk.objects.filter(document=document).order_by("ordinal").values_list("ordinal", "text")
        )
        cut = cut_identifiers([text for _, text in chunks], identifiers)
        if cut:
            yield document, [chunks[index][0] for index in cut]
