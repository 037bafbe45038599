"""The interface every guardrail kind implements, and what a check returns.

A kind is a subclass of ``Check`` in its own module of ``guardrails.checks``. It declares the actions
and stages it supports, validates and normalises its configuration in ``validate_config`` (raising
``ConfigError`` with every problem found), compiles what it needs once in ``__init__`` (instances are
cached per configuration by the engine) and inspects a text in ``run``, which must not touch the
database. A check that can decide on one sentence declares ``sentence_wise = True``: the runtime
then runs it on each sentence of a streamed answer before the sentence is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

Span = tuple[int, int, str]

ALL_STAGES = frozenset({"input", "retrieval", "output"})


class ConfigError(Exception):
    """An invalid configuration; ``messages`` lists every problem, each a full sentence."""

    def __init__(self, messages: list[str] | str):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


@dataclass(slots=True)
class Redaction:
    """A piece of text to replace by a typed placeholder ``[LABEL_n]``."""

    start: int
    end: int
    label: str
    value: str


@dataclass(slots=True)
class Finding:
    """What a check found in a text. ``triggered`` means the guardrail's action applies."""

    triggered: bool
    message: str = ""
    spans: list[Span] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    redactions: list[Redaction] = field(default_factory=list)
    append: str | None = None
    append_position: str = "end"


class Check:
    """Base class of the guardrail kinds."""

    kind: ClassVar[str]
    actions: ClassVar[frozenset[str]]
    stages: ClassVar[frozenset[str]] = ALL_STAGES
    default_action: ClassVar[str] = "block"
    #: Whether the check can decide on each sentence of a text on its own (a term, a pattern, an
    #: identifier lies within a sentence), so that a streamed answer is checked sentence by sentence
    #: before it is shown; False for checks that need the whole text (citations, schema, length).
    sentence_wise: ClassVar[bool] = False
    # A valid configuration to start from (shown by the admin form and the API documentation).
    example_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Mapping[str, Any]):
        self.config = config

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return the configuration with defaults filled in; raise ``ConfigError`` if invalid."""
        raise NotImplementedError

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        raise NotImplementedError


# --- Helpers for validate_config ------------------------------------------------------------------


def reject_unknown(config: Mapping[str, Any], allowed: set[str], errors: list[str]) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        errors.append(f"Unknown setting(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.")


def get_bool(config: Mapping[str, Any], key: str, default: bool, errors: list[str]) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        errors.append(f"'{key}' must be true or false.")
        return default
    return value


def get_int(
    config: Mapping[str, Any],
    key: str,
    default: int | None,
    errors: list[str],
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"'{key}' must be a whole number.")
        return default
    if minimum is not None and value < minimum:
        errors.append(f"'{key}' must be at least {minimum}.")
    if maximum is not None and value > maximum:
        errors.append(f"'{key}' must be at most {maximum}.")
    return value


def get_number(
    config: Mapping[str, Any], key: str, default: float, errors: list[str], *, minimum: float, maximum: float
) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(f"'{key}' must be a number.")
        return default
    if not minimum <= value <= maximum:
        errors.append(f"'{key}' must be between {minimum} and {maximum}.")
    return float(value)


def get_string_list(
    config: Mapping[str, Any],
    key: str,
    errors: list[str],
    *,
    required: bool = False,
    max_items: int = 500,
    max_length: int = 200,
) -> list[str]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"'{key}' must be a list of strings.")
        return []
    cleaned = [v.strip() for v in value]
    if any(not v for v in cleaned):
        errors.append(f"'{key}' must not contain empty entries.")
    if required and not any(cleaned):
        errors.append(f"'{key}' must list at least one entry.")
    if len(cleaned) > max_items:
        errors.append(f"'{key}' may list at most {max_items} entries.")
    too_long = [v for v in cleaned if len(v) > max_length]
    if too_long:
        errors.append(f"Entries of '{key}' may be at most {max_length} characters long.")
    return [v for v in cleaned if v]
