"""Personas: the versioned prompt and model settings of an agent."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from prisma_glow.config_stamp import ConfigQuerySet
from prisma_glow.models import TimeStampedModel


def default_max_tokens() -> int:
    """The answer length (tokens) used for a persona without its own ``max_tokens``: the setting
    ``PRISMA_GLOW_DEFAULT_MAX_TOKENS`` (1,024 unless configured)."""
    return int(settings.DEFAULT_MAX_TOKENS)


class Persona(TimeStampedModel):
    """One version of an agent's persona (system prompt, tone, audience, model settings).

    Versions are numbered per agent from 1. A version that an execution has used is immutable: an
    edit creates the next version (``personas.services.persona_update``). At most one version per
    agent is active.
    """

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="personas")
    version = models.PositiveIntegerField(editable=False)
    name = models.CharField(max_length=120)
    system_prompt = models.TextField()
    tone = models.CharField(max_length=60, blank=True, default="professional")
    audience = models.CharField(max_length=120, blank=True)
    language = models.CharField(max_length=16, default="en")
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.20"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
    )
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(128000)]
    )
    model_override = models.CharField(max_length=120, blank=True)
    is_active = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "agent__organization"
    #: Changes replace the organisation's configuration stamp (prisma_glow.config_stamp).
    config_scope = "agent__organization_id"
    objects = ConfigQuerySet.as_manager()

    class Meta:
        ordering = ["agent", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "version"],
                name="persona_unique_version",
                violation_error_message="This agent already has a persona with that version number.",
            ),
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(is_active=True),
                name="persona_one_active_per_agent",
                violation_error_message="An agent can have only one active persona.",
            ),
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                name="persona_temperature_range",
                violation_error_message="Temperature must be between 0 and 2.",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="persona_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def effective_max_tokens(self) -> int:
        """``max_tokens``, or the default (``default_max_tokens``) when the persona sets none."""
        return self.max_tokens or default_max_tokens()
