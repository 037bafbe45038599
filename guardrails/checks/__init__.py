"""The guardrail kinds, one module each, and the validation of their configuration.

``validate_config(kind, config, *, action)`` is what ``Guardrail.clean()``, the API serializer and the
admin form call on save; ``build_check(kind, config)`` returns the compiled check the engine runs,
cached per configuration so that patterns are compiled once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError

from guardrails.checks.base import Check, ConfigError, Finding, Redaction
from guardrails.checks.blocked_topics import BlockedTopicsCheck
from guardrails.checks.citation_required import CitationRequiredCheck
from guardrails.checks.disclaimer import DisclaimerCheck
from guardrails.checks.json_schema import JSONSchemaCheck
from guardrails.checks.keywords import KeywordsCheck
from guardrails.checks.max_length import MaxLengthCheck
from guardrails.checks.pii import PIICheck
from guardrails.checks.prompt_injection import PromptInjectionCheck
from guardrails.checks.regex_check import RegexCheck

CHECKS: dict[str, type[Check]] = {
    cls.kind: cls
    for cls in (
        PIICheck,
        PromptInjectionCheck,
        BlockedTopicsCheck,
        KeywordsCheck,
        RegexCheck,
        MaxLengthCheck,
        CitationRequiredCheck,
        DisclaimerCheck,
        JSONSchemaCheck,
    )
}

__all__ = [
    "CHECKS",
    "Check",
    "ConfigError",
    "Finding",
    "Redaction",
    "build_check",
    "check_class",
    "normalize_config",
    "validate_config",
]


def check_class(kind: str) -> type[Check]:
    """The ``Check`` subclass of ``kind``; ``ValidationError`` on ``kind`` if there is none."""
    try:
        return CHECKS[kind]
    except KeyError:
        raise ValidationError({"kind": f"Unknown guardrail kind {kind!r}. Choose from: {', '.join(CHECKS)}."})


def normalize_config(kind: str, config: Any) -> dict[str, Any]:
    """The configuration with defaults filled in; ``ValidationError({"config": [...]})`` if invalid."""
    cls = check_class(kind)
    if not isinstance(config, dict):
        raise ValidationError({"config": "The configuration must be a JSON object."})
    try:
        return cls.validate_config(config)
    except ConfigError as exc:
        raise ValidationError({"config": exc.messages})


def validate_config(kind: str, config: Any, *, action: str) -> dict[str, Any]:
    """Validate a guardrail's ``config`` for its ``kind`` and check that ``action`` suits the kind.

    Raises ``ValidationError`` with every problem: ``{"config": [...]}`` and/or ``{"action": [...]}``.
    Returns the normalised configuration (defaults filled in).
    """
    cls = check_class(kind)
    errors: dict[str, list[str]] = {}
    if action not in cls.actions:
        allowed = ", ".join(sorted(cls.actions))
        errors["action"] = [f"A {kind} guardrail cannot use the action {action!r}; use: {allowed}."]
    try:
        normalised = normalize_config(kind, config)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        normalised = {}
    if errors:
        raise ValidationError(errors)
    return normalised


def build_check(kind: str, config: dict[str, Any]) -> Check:
    """The compiled check for ``kind`` and ``config`` (cached; raises ``ValidationError`` if invalid)."""
    key = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return _build(kind, key)


@lru_cache(maxsize=512)
def _build(kind: str, config_json: str) -> Check:
    config = normalize_config(kind, json.loads(config_json))
    return CHECKS[kind](config)
