"""Serializers of the knowledge API: lean read shapes, field checks for writes.

Writes go through ``knowledge.services`` from the viewsets; these only validate and shape.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.search import MAX_TOP_K
from knowledge.services import POSTGRES_SEARCH_CONFIGS
from prisma_glow.api.fields import JSONObjectValueField, JSONValueField


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    """A knowledge base with its chunking and search settings and how many documents it holds."""

    search_config = serializers.ChoiceField(
        choices=sorted(POSTGRES_SEARCH_CONFIGS),
        default="english",
        help_text="PostgreSQL text-search configuration: the language whose stemming and stop words apply.",
    )
    document_count = serializers.IntegerField(read_only=True, default=0)
    chunk_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = KnowledgeBase
        fields = [
            "id",
            "name",
            "description",
            "chunk_size",
            "chunk_overlap",
            "search_config",
            "document_count",
            "chunk_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness and the overlap check are enforced by the service's full_clean().
        validators: list = []


class DocumentSerializer(serializers.ModelSerializer):
    """A document and its processing state (``pending`` → ``processing`` → ``ready`` / ``failed``)."""

    file_name = serializers.SerializerMethodField()
    # A JSON object, declared as one (the model's JSONField was "any value", and null a 400).
    metadata = JSONObjectValueField(required=False)

    class Meta:
        model = Document
        fields = [
            "id",
            "knowledge_base",
            "title",
            "source",
            "file_name",
            "mime_type",
            "size_bytes",
            "sha256",
            "status",
            "error",
            "jurisdiction",
            "effective_from",
            "effective_to",
            "metadata",
            "chunk_count",
            "page_count",
            "processed_at",
            "uploaded_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [f for f in fields if f not in {"title", "jurisdiction", "effective_from",
                                                            "effective_to", "metadata"}]  # fmt: skip
        extra_kwargs = {"metadata": {"required": False}}

    def get_file_name(self, document: Document) -> str:
        return (document.metadata or {}).get("filename", "") if isinstance(document.metadata, dict) else ""


class DocumentCreateSerializer(serializers.Serializer):
    """Upload a file (multipart) or send a text (JSON or form). Exactly one of ``file`` and ``text``."""

    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="A .txt, .md, .html, .pdf or .docx file."
    )
    text = serializers.CharField(
        required=False, trim_whitespace=False, allow_blank=True, help_text="Markdown or plain text."
    )
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Blank: from the file name or first line."
    )
    jurisdiction = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="e.g. EU, DE, US-NY; blank: applies everywhere.",
    )
    effective_from = serializers.DateField(required=False, allow_null=True)
    effective_to = serializers.DateField(required=False, allow_null=True)
    metadata = JSONValueField(required=False)

    def validate_metadata(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        if ("file" in attrs) == ("text" in attrs):
            raise serializers.ValidationError(
                {"file": ["Send either a file (multipart upload) or a text, not both and not neither."]}
            )
        return attrs


class _DocumentFieldsSerializer(serializers.Serializer):
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Blank: from the file name or first line."
    )
    jurisdiction = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="e.g. EU, DE, US-NY; blank: applies everywhere.",
    )
    effective_from = serializers.DateField(required=False, allow_null=True)
    effective_to = serializers.DateField(required=False, allow_null=True)


class DocumentUploadSerializer(_DocumentFieldsSerializer):
    """Schema of a multipart upload: a file (its content decides whether it can be ingested)."""

    file = serializers.FileField(help_text="A .txt, .md, .html, .pdf or .docx file.")


class DocumentTextSerializer(_DocumentFieldsSerializer):
    """Schema of a JSON document: Markdown or plain text."""

    text = serializers.CharField(
        trim_whitespace=False, validators=[RegexValidator(r"^[^\x00]*[^\s\x00][^\x00]*$", "The text is empty.")],
        help_text="Markdown or plain text.",
    )  # fmt: skip
    metadata = serializers.DictField(required=False, help_text="A JSON object.")


class ChunkSerializer(serializers.ModelSerializer):
    """One passage of a document, with its location for citations."""

    class Meta:
        model = Chunk
        fields = ["id", "document", "ordinal", "text", "token_count", "page", "heading_path"]
        read_only_fields = fields


class SearchRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000, help_text='Words, "quoted phrases" and -excluded words.')
    top_k = serializers.IntegerField(default=5, min_value=1, max_value=MAX_TOP_K)
    as_of = serializers.DateField(
        required=False, allow_null=True, help_text="Leave out documents not in force on this date."
    )
    jurisdiction = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="Keep documents of this jurisdiction, of its parent (US for US-NY) and those with none.",
    )
    min_score = serializers.FloatField(default=0.0, min_value=0.0, max_value=1.0)


class MultiSearchRequestSerializer(SearchRequestSerializer):
    knowledge_bases = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=100,
        help_text="Ids of the organisation's knowledge bases to search; empty or absent: all of them.",
    )


class PassageSerializer(serializers.Serializer):
    """A ranked passage with citation data and highlight offsets (``[start, end)`` in ``text``)."""

    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    knowledge_base_id = serializers.IntegerField()
    ordinal = serializers.IntegerField()
    text = serializers.CharField()
    score = serializers.FloatField()
    page = serializers.IntegerField(allow_null=True)
    heading_path = serializers.CharField()
    citation = serializers.CharField()
    highlights = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    highlighted_html = serializers.CharField(help_text="The text, HTML-escaped, matches in <mark>.")


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    count = serializers.IntegerField()
    took_ms = serializers.FloatField()
    results = PassageSerializer(many=True)
