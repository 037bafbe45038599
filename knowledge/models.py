"""Knowledge bases, their documents and the searchable chunks made from them."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from prisma_glow.config_stamp import ConfigQuerySet
from prisma_glow.models import TimeStampedModel


class KnowledgeBase(TimeStampedModel):
    """A named collection of documents that agents search, with its chunking and search settings."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="knowledge_bases"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    chunk_size = models.PositiveIntegerField(
        default=1200,
        validators=[MinValueValidator(200), MaxValueValidator(8000)],
        help_text="Target chunk length in characters.",
    )
    chunk_overlap = models.PositiveIntegerField(
        default=150, validators=[MaxValueValidator(2000)], help_text="Characters repeated between chunks."
    )
    search_config = models.CharField(
        max_length=40,
        default="english",
        help_text="PostgreSQL text-search configuration (e.g. english, german).",
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="kb_unique_name_per_org",
                violation_error_message="A knowledge base with this name already exists in this organisation.",
            ),
            models.CheckConstraint(
                condition=Q(chunk_overlap__lt=F("chunk_size")),
                name="kb_overlap_below_size",
                violation_error_message="The chunk overlap must be smaller than the chunk size.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DocumentSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    TEXT = "text", "Text"
    URL = "url", "URL"


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


def document_upload_to(instance: Document, filename: str) -> str:
    return f"documents/{instance.knowledge_base.organization_id}/{instance.knowledge_base_id}/{filename}"


class Document(TimeStampedModel):
    """A source document in a knowledge base; processed in the background into chunks.

    The same content (sha256) appears at most once per knowledge base. ``jurisdiction`` and the
    effective dates let retrieval leave out what does not apply.
    """

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    source = models.CharField(max_length=10, choices=DocumentSource.choices, default=DocumentSource.UPLOAD)
    file = models.FileField(upload_to=document_upload_to, max_length=500, blank=True)
    source_url = models.URLField(max_length=1000, blank=True)
    sha256 = models.CharField(max_length=64)
    mime_type = models.CharField(max_length=120, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=12, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.TextField(blank=True)
    jurisdiction = models.CharField(
        max_length=20, blank=True, help_text="e.g. EU, DE, UK, US-NY; blank: any."
    )
    effective_from = models.DateField(null=True, blank=True)
    effective_to = models.DateField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "knowledge_base__organization"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["knowledge_base", "sha256"],
                name="document_unique_content_per_kb",
                violation_error_message="This file is already in the knowledge base.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DocumentStatus.values), name="document_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=DocumentSource.values), name="document_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_from__isnull=True)
                | Q(effective_to__gte=F("effective_from")),
                name="document_effective_range",
                violation_error_message="The end of the effective period cannot be before its start.",
            ),
        ]
        indexes = [
            models.Index(fields=["knowledge_base", "status"]),
            # Every processing task looks for documents stuck in processing (services.document_fail_stuck).
            models.Index(
                fields=["updated_at"], condition=Q(status="processing"), name="document_processing_since"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    # What the admin shows for a MIME type: "Word", not "application/vnd.openxmlformats-…".
    TYPE_LABELS = {
        "application/pdf": "PDF",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
        "text/markdown": "Markdown",
        "text/html": "HTML",
        "text/plain": "Text",
    }

    @property
    def type_label(self) -> str:
        """A short, readable name of the file type (the MIME type itself when it is not a known one)."""
        return self.TYPE_LABELS.get(self.mime_type.split(";")[0].strip().lower(), self.mime_type)

    def clean(self) -> None:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValidationError(
                {"effective_to": "The end of the effective period cannot be before its start."}
            )


class Chunk(models.Model):
    """A passage of a document, the unit of retrieval and citation.

    ``page`` and ``heading_path`` locate it for citations ("VAT manual, p. 12, § Reverse charge").
    The search index over ``text`` is built per database by ``knowledge.search``.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    page = models.PositiveIntegerField(null=True, blank=True)
    heading_path = models.CharField(max_length=500, blank=True)
    # The screening of ``text`` made when the chunk was stored, by the screener registered with
    # ``knowledge.screening`` (the guardrails app's prompt-injection detector); None when there is
    # none. The retrieval stage reuses it instead of scanning the passage again on every run.
    screening = models.JSONField(null=True, blank=True, editable=False)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "document__knowledge_base__organization"

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal"),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"
