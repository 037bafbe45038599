"""Reads of knowledge that several doors share (API, admin, runtime): keyword-only ``<entity>_<verb>``
functions returning querysets, so that a read is written once. Writes are in ``services.py``; search is
``knowledge.search.search``."""

from __future__ import annotations

from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from knowledge.models import KnowledgeBase


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
