"""``/api/v1/knowledge-bases/``: knowledge bases, their documents and chunks, and retrieval.

The viewsets are thin: scoping comes from the organisation-scoped base classes, every write goes
through ``knowledge.services`` (validated and audited), and searching calls ``knowledge.search``.
"""

from __future__ import annotations

import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from knowledge import services
from knowledge.api.filtersets import DocumentFilterSet
from knowledge.api.serializers import (
    ChunkSerializer,
    DocumentCreateSerializer,
    DocumentSerializer,
    DocumentTextSerializer,
    DocumentUploadSerializer,
    KnowledgeBaseSerializer,
    MultiSearchRequestSerializer,
    SearchRequestSerializer,
    SearchResponseSerializer,
)
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.search import search
from knowledge.selectors import knowledge_base_list_with_counts
from prisma_glow.api.viewsets import OrganizationScopedMixin, OrganizationScopedViewSet

KB_PATH = OpenApiParameter(
    "knowledge_base_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The knowledge base's id."
)
DOCUMENT_PATH = OpenApiParameter(
    "document_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The document's id."
)
SEARCH_EXAMPLE = OpenApiExample(
    "Reverse charge",
    request_only=True,
    value={
        "query": '"reverse charge" consultancy invoice',
        "top_k": 5,
        "as_of": "2026-01-01",
        "jurisdiction": "DE",
    },
)


def _run_search(knowledge_bases, data: dict, organization) -> dict:
    started = time.perf_counter()
    passages = search(
        knowledge_bases,
        data["query"],
        top_k=data["top_k"],
        as_of=data.get("as_of"),
        jurisdiction=data.get("jurisdiction") or None,
        min_score=data["min_score"],
        organization=organization,
    )
    return {
        "query": data["query"],
        "count": len(passages),
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
        "results": [p.to_dict() for p in passages],
    }


# --- Knowledge bases ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List knowledge bases", description="`search` looks in name and description."),
    retrieve=extend_schema(summary="Retrieve a knowledge base"),
    create=extend_schema(
        summary="Create a knowledge base",
        description="`chunk_size` and `chunk_overlap` (characters) shape the passages; `search_config` is the "
        "PostgreSQL text-search configuration (english, german, french, simple…).",
        examples=[
            OpenApiExample(
                "EU VAT guidance",
                request_only=True,
                value={"name": "EU VAT guidance", "chunk_size": 1200, "chunk_overlap": 150},
            )
        ],
    ),
    update=extend_schema(summary="Replace a knowledge base's settings"),
    partial_update=extend_schema(
        summary="Update a knowledge base's settings",
        description="A new chunk size or overlap re-processes every document in the background.",
    ),
    destroy=extend_schema(
        summary="Delete a knowledge base",
        description="Deletes its documents and their passages. 409 while an agent still uses it.",
    ),
)
class KnowledgeBaseViewSet(OrganizationScopedViewSet):
    """The organisation's knowledge bases."""

    queryset = knowledge_base_list_with_counts()
    serializer_class = KnowledgeBaseSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name", "id"]
    lookup_value_regex = "[0-9]+"
    policy_resource = "knowledge_base"
    operations = {
        "search": "knowledge_base.search",
        "search_all": "knowledge_base.search",
        "reindex": "knowledge_base.change",
    }

    def _fresh(self, knowledge_base: KnowledgeBase) -> KnowledgeBase:
        return self.get_queryset().get(pk=knowledge_base.pk)

    def perform_create(self, serializer):
        knowledge_base = services.knowledge_base_create(
            organization=self.organization,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        serializer.instance = self._fresh(knowledge_base)

    def perform_update(self, serializer):
        knowledge_base = services.knowledge_base_update(
            knowledge_base=serializer.instance,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        serializer.instance = self._fresh(knowledge_base)

    def perform_destroy(self, instance):
        services.knowledge_base_delete(knowledge_base=instance, actor=self.access.actor)

    @extend_schema(
        summary="Search a knowledge base",
        description="Ranked passages for `query` with scores (0–1), citation data and highlight offsets. "
        "`as_of` leaves out documents not in force that day; `jurisdiction` keeps documents of that "
        "jurisdiction, of its parent and those with no jurisdiction.",
        request=SearchRequestSerializer,
        responses={200: SearchResponseSerializer},
        examples=[SEARCH_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def search(self, request, pk=None):
        knowledge_base = self.get_object()
        payload = SearchRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return Response(_run_search([knowledge_base], payload.validated_data, self.organization))

    @extend_schema(
        operation_id="knowledge_bases_search_many",
        summary="Search several knowledge bases",
        description="Like a knowledge base's search, over the listed `knowledge_bases` (ids of the "
        "organisation's knowledge bases; absent: all of them). Unknown ids answer 404.",
        request=MultiSearchRequestSerializer,
        responses={200: SearchResponseSerializer},
        examples=[SEARCH_EXAMPLE],
    )
    @action(detail=False, methods=["post"], url_path="search")
    def search_all(self, request):
        payload = MultiSearchRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        wanted = payload.validated_data.get("knowledge_bases") or []
        scoped = KnowledgeBase.objects.filter(organization=self.organization).only(
            "id", "search_config", "organization_id"
        )
        if wanted:
            scoped = scoped.filter(pk__in=wanted)
            knowledge_bases = list(scoped)
            if len(knowledge_bases) != len(set(wanted)):
                from rest_framework.exceptions import NotFound

                raise NotFound("One or more knowledge bases were not found.")
        else:
            knowledge_bases = list(scoped)
        return Response(_run_search(knowledge_bases, payload.validated_data, self.organization))

    @extend_schema(
        summary="Re-process every document of a knowledge base",
        description="Each document is parsed, chunked and indexed again in the background. Audited.",
        request=None,
        responses={202: KnowledgeBaseSerializer},
    )
    @action(detail=True, methods=["post"])
    def reindex(self, request, pk=None):
        knowledge_base = services.knowledge_base_reindex(
            knowledge_base=self.get_object(), actor=self.access.actor
        )
        return Response(
            self.get_serializer(self._fresh(knowledge_base)).data, status=status.HTTP_202_ACCEPTED
        )


# --- Documents ----------------------------------------------------------------------------------


class KnowledgeBaseChildMixin(OrganizationScopedMixin):
    """A resource nested under ``/knowledge-bases/{knowledge_base_pk}/``: the knowledge base is looked
    up in the caller's organisation first (404 otherwise)."""

    @property
    def knowledge_base(self) -> KnowledgeBase:
        if not hasattr(self, "_knowledge_base"):
            self._knowledge_base = get_object_or_404(
                KnowledgeBase.objects.filter(organization=self.organization).select_related("organization"),
                pk=self.kwargs["knowledge_base_pk"],
            )
        return self._knowledge_base


@extend_schema_view(
    list=extend_schema(
        summary="List a knowledge base's documents",
        description="Filter by `status` (repeatable), `source` and `jurisdiction`; `search` in titles.",
        parameters=[KB_PATH],
    ),
    retrieve=extend_schema(summary="Retrieve a document with its processing status", parameters=[KB_PATH]),
    create=extend_schema(
        summary="Add a document",
        description="Upload a file as `multipart/form-data` (field `file`: .txt, .md, .html, .pdf or .docx, "
        "at most the configured size, 20 MB by default) or send `text` (Markdown or plain). The content "
        "decides the type, and the file name's extension must be one of that type's. The upload is refused "
        "at once (400) when the type is unsupported or does not match the extension, or the file is empty, "
        "encrypted or too large, "
        "and answers 409 naming the existing document when the same content is already in the knowledge "
        "base. Accepted documents start `pending` and are processed in the background: poll the document "
        "until `status` is `ready` (with `chunk_count`) or `failed` (with `error`).",
        request={"multipart/form-data": DocumentUploadSerializer, "application/json": DocumentTextSerializer},
        responses={201: DocumentSerializer},
        parameters=[KB_PATH],
        examples=[
            OpenApiExample(
                "Text",
                request_only=True,
                media_type="application/json",
                value={
                    "title": "Reverse charge memo",
                    "text": "# Reverse charge\n\nThe customer accounts…",
                    "jurisdiction": "EU",
                    "effective_from": "2025-01-01",
                },  # fmt: skip
            )
        ],
    ),
    partial_update=extend_schema(
        summary="Update a document's title, jurisdiction, effective dates or metadata", parameters=[KB_PATH]
    ),
    destroy=extend_schema(summary="Delete a document and its passages", parameters=[KB_PATH]),
)
class DocumentViewSet(
    KnowledgeBaseChildMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The documents of one knowledge base."""

    queryset = Document.objects.all()
    policy_resource = "document"
    operations = {"reindex": "document.change"}
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilterSet
    search_fields = ["title"]
    ordering_fields = ["title", "status", "created_at", "updated_at", "chunk_count"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().filter(knowledge_base=self.knowledge_base)

    def create(self, request, *args, **kwargs):
        payload = DocumentCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        document = services.document_create(
            knowledge_base=self.knowledge_base,
            actor=self.access.actor,
            **payload.validated_data,
        )
        return Response(self.get_serializer(document).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.document_update(
            document=serializer.instance,
            actor=self.access.actor,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.document_delete(document=instance, actor=self.access.actor)

    @extend_schema(
        summary="Re-process a document",
        description="Parses, chunks and indexes the document again in the background; its previous "
        "passages stay searchable until the new ones replace them. Audited.",
        request=None,
        responses={202: DocumentSerializer},
        parameters=[KB_PATH],
    )
    @action(detail=True, methods=["post"])
    def reindex(self, request, knowledge_base_pk=None, pk=None):
        document = services.document_reindex(document=self.get_object(), actor=self.access.actor)
        return Response(self.get_serializer(document).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="List a document's passages",
        description="In document order, with page and heading path.",
        parameters=[KB_PATH, DOCUMENT_PATH],
    ),
    retrieve=extend_schema(summary="Retrieve a passage", parameters=[KB_PATH, DOCUMENT_PATH]),
)
class ChunkViewSet(KnowledgeBaseChildMixin, viewsets.ReadOnlyModelViewSet):
    """The passages (chunks) of one document."""

    queryset = Chunk.objects.all()
    operations = {"list": "document.view", "retrieve": "document.view"}
    serializer_class = ChunkSerializer
    filter_backends: list = []
    ordering = ["ordinal"]

    def get_queryset(self):
        document = get_object_or_404(
            Document.objects.filter(knowledge_base=self.knowledge_base), pk=self.kwargs["document_pk"]
        )
        return super().get_queryset().filter(document=document).order_by("ordinal")
