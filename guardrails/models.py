"""Guardrails: checks applied to the input, to retrieved passages and to the model's answer."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from guardrails.checks import CHECKS, validate_config
from prisma_glow.config_stamp import ConfigQuerySet
from prisma_glow.models import TimeStampedModel


class GuardrailKind(models.TextChoices):
    PII = "pii", "PII detection / redaction"
    PROMPT_INJECTION = "prompt_injection", "Prompt injection"
    BLOCKED_TOPICS = "blocked_topics", "Blocked topics"
    KEYWORDS = "keywords", "Keywords"
    REGEX = "regex", "Regular expression"
    MAX_LENGTH = "max_length", "Maximum length"
    CITATION_REQUIRED = "citation_required", "Citations required"
    DISCLAIMER = "disclaimer", "Disclaimer"
    JSON_SCHEMA = "json_schema", "JSON Schema"


class GuardrailAction(models.TextChoices):
    BLOCK = "block", "Block"
    REDACT = "redact", "Redact"
    WARN = "warn", "Warn (record only)"
    APPEND = "append", "Append"


class Stage(models.TextChoices):
    INPUT = "input", "Input"
    RETRIEVAL = "retrieval", "Retrieved passages"
    OUTPUT = "output", "Output"


class Guardrail(TimeStampedModel):
    """A configured check. ``config`` is validated per kind (``guardrails.checks``) on save.

    ``applies_to_*`` choose the stages it runs at; at least one is on.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="guardrails"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=24, choices=GuardrailKind.choices)
    action = models.CharField(max_length=10, choices=GuardrailAction.choices, default=GuardrailAction.BLOCK)
    applies_to_input = models.BooleanField(default=True)
    applies_to_retrieval = models.BooleanField(default=False)
    applies_to_output = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)

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
                name="guardrail_unique_name_per_org",
                violation_error_message="A guardrail with this name already exists in this organisation.",
            ),
            models.CheckConstraint(condition=Q(kind__in=GuardrailKind.values), name="guardrail_kind_valid"),
            models.CheckConstraint(
                condition=Q(action__in=GuardrailAction.values), name="guardrail_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(applies_to_input=True) | Q(applies_to_retrieval=True) | Q(applies_to_output=True),
                name="guardrail_has_stage",
                violation_error_message="Choose at least one stage: input, retrieval or output.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def applies_to(self, stage: str) -> bool:
        return {
            Stage.INPUT: self.applies_to_input,
            Stage.RETRIEVAL: self.applies_to_retrieval,
            Stage.OUTPUT: self.applies_to_output,
        }[Stage(stage)]

    def clean(self) -> None:
        """Validate ``config`` for the kind, the action and the stages (``guardrails.checks``)."""
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "The configuration must be a JSON object."})
        errors: dict[str, list[str]] = {}
        try:
            validate_config(self.kind, self.config, action=self.action)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        check = CHECKS.get(self.kind)
        if check is not None:
            wrong = [s.label.lower() for s in Stage if self.applies_to(s) and s.value not in check.stages]
            if wrong:
                allowed = " and ".join(s.label.lower() for s in Stage if s.value in check.stages)
                errors.setdefault("__all__", []).append(
                    f"A {self.get_kind_display()} guardrail runs only on the {allowed}, "
                    f"not on the {' or '.join(wrong)}."
                )
        if errors:
            raise ValidationError(errors)
