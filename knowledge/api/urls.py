"""Routes of the knowledge API, registered on the one router of ``prisma_glow.api.urls``."""

from knowledge.api.views import ChunkViewSet, DocumentViewSet, KnowledgeBaseViewSet

KNOWLEDGE_BASE = r"knowledge-bases/(?P<knowledge_base_pk>[0-9]+)"


def register(router) -> None:
    """Knowledge bases (+ search, reindex), their documents (+ reindex) and each document's chunks."""
    router.register("knowledge-bases", KnowledgeBaseViewSet, basename="knowledge-base")
    router.register(f"{KNOWLEDGE_BASE}/documents", DocumentViewSet, basename="knowledge-base-document")
    router.register(
        rf"{KNOWLEDGE_BASE}/documents/(?P<document_pk>[0-9]+)/chunks",
        ChunkViewSet,
        basename="knowledge-base-document-chunk",
    )
