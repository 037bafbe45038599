"""Running guardrails: ``evaluate`` applies a list of guardrails to a text at one stage.

The runtime calls it at the input, retrieval and output stages; the API ``check`` action and the admin
tester call it with the same arguments, so all three show the same verdict.

Semantics:

- **Order.** Guardrails run in the order given (the agent's assignments, by ``order``). Disabled ones
  and those that do not apply to the stage are left out.
- **First block wins.** When a guardrail with the ``block`` action triggers, the verdict is blocked and
  the guardrails after it are *not run*: each is recorded with status ``skipped``, so the trace still
  shows the whole list.
- **Detection sees the text as given.** Every check inspects the same text, so every span in the verdict
  points into the caller's text (the admin tester highlights them as they are). Redactions of all the
  ``redact`` guardrails are merged (overlaps resolved in favour of the earlier, then the longer span)
  and applied once at the end; then ``append`` notices are added in order.
- **Placeholders.** A redacted value becomes ``[LABEL_n]`` (``[IBAN_1]``, ``[EMAIL_2]``). The mapping
  placeholder → original is ``Verdict.redactions``; pass it on in ``context["redactions"]`` at the next
  stage so that numbering continues and a value seen before keeps its placeholder. At the output stage
  ``context["restore"] = True`` puts back the values of the incoming mapping (what the user sent or
  the firm's documents held) in ``Verdict.text`` — placeholders created from the answer itself stay.
  ``Verdict.redacted_text`` is always the text with placeholders, safe to store or send to a provider.
- **Errors fail closed.** A check that cannot run (invalid stored configuration, a regex over its time
  limit) is recorded with status ``error``; with the ``block`` action it blocks.
- **Sentence by sentence.** ``evaluate(..., sentence=True)`` runs only the checks that can decide on
  one sentence (``Check.sentence_wise``: blocked topics, keywords, regex, PII) and leaves the others
  out; the runtime uses it on each sentence of a streamed answer before showing it, and still
  evaluates the whole answer at the end (``sentence_wise`` tells which guardrails apply).
- **Records.** Each guardrail gives one ``CheckResult`` with its status, message, spans, signals, details
  and duration. ``Verdict.to_dict()`` is JSON-safe and never contains the redacted originals.

``evaluate`` never touches the database: pass guardrails that are already loaded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from guardrails.checks import CHECKS, build_check
from guardrails.checks.base import Redaction, Span

STAGES = ("input", "retrieval", "output")

PASSED = "passed"
TRIGGERED = "triggered"
SKIPPED = "skipped"
ERROR = "error"

_PLACEHOLDER_RE = re.compile(r"\[([A-Z][A-Z0-9_]*)_(\d+)\]")
_PLACEHOLDER_ANY_CASE_RE = re.compile(r"\[([A-Za-z][A-Za-z0-9_]*_\d+)\]")


@dataclass(slots=True)
class CheckResult:
    """The outcome of one guardrail at one stage."""

    guardrail_id: int | None
    name: str
    kind: str
    action: str
    status: str = PASSED
    triggered: bool = False
    message: str = ""
    spans: list[Span] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.action == "block" and self.status in {TRIGGERED, ERROR}

    def to_dict(self) -> dict[str, Any]:
        return {
            "guardrail_id": self.guardrail_id,
            "name": self.name,
            "kind": self.kind,
            "action": self.action,
            "status": self.status,
            "triggered": self.triggered,
            "message": self.message,
            "spans": [[start, end, label] for start, end, label in self.spans],
            "signals": [dict(s) for s in self.signals],
            "duration_ms": round(self.duration_ms, 3),
            "details": self.details,
        }


@dataclass(slots=True)
class Verdict:
    """What ``evaluate`` returns. ``text`` is what to pass on (redacted, notices added, maybe restored)."""

    stage: str
    text: str
    redacted_text: str
    blocked: bool = False
    blocked_by: CheckResult | None = None
    results: list[CheckResult] = field(default_factory=list)
    redactions: dict[str, str] = field(default_factory=dict)
    new_redactions: list[str] = field(default_factory=list)
    restored: bool = False
    duration_ms: float = 0.0

    @property
    def message(self) -> str:
        """A safe, human-readable summary: why it was blocked, or what was done."""
        if self.blocked_by is not None:
            return f"Blocked by the guardrail “{self.blocked_by.name}”: {self.blocked_by.message}"
        triggered = [r for r in self.results if r.triggered]
        if not triggered:
            return "All guardrails passed."
        return "; ".join(f"{r.name} ({r.action}): {r.message}" for r in triggered)

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if r.action == "warn" and r.triggered]

    @property
    def triggered(self) -> list[CheckResult]:
        return [r for r in self.results if r.triggered]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; holds placeholders but never the values they replace."""
        return {
            "stage": self.stage,
            "blocked": self.blocked,
            "blocked_by": self.blocked_by.to_dict() if self.blocked_by is not None else None,
            "message": self.message,
            "text": None if self.blocked else self.redacted_text,
            "results": [r.to_dict() for r in self.results],
            "redactions": sorted(self.redactions, key=_placeholder_sort_key),
            "new_redactions": list(self.new_redactions),
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass(slots=True)
class _Spec:
    guardrail_id: int | None
    name: str
    kind: str
    action: str
    config: dict[str, Any]


def _spec(item: Any, stage: str) -> _Spec | None:
    """The guardrail behind ``item`` if it runs at ``stage``; ``item`` is a ``Guardrail``, an assignment
    (anything with ``.guardrail`` and ``.enabled``) or a mapping with the same keys as the model."""
    if not isinstance(item, Mapping) and hasattr(item, "guardrail"):
        if not getattr(item, "enabled", True):
            return None
        item = item.guardrail
    if isinstance(item, Mapping):
        get = item.get
        flags = {s: get(f"applies_to_{s}") for s in STAGES}
        applies = flags[stage] if any(v is not None for v in flags.values()) else True
        enabled = get("enabled", True)
        guardrail_id = get("id")
        name, kind, action, config = (
            get("name") or get("kind"),
            get("kind"),
            get("action"),
            get("config") or {},
        )
    else:
        applies = item.applies_to(stage)
        enabled = item.enabled
        guardrail_id = item.pk
        name, kind, action, config = item.name, item.kind, item.action, item.config
    if not enabled or not applies:
        return None
    cls = CHECKS.get(kind)
    if cls is not None and stage not in cls.stages:
        return None
    if action is None and cls is not None:
        action = cls.default_action
    return _Spec(guardrail_id, str(name), str(kind), str(action), config if isinstance(config, dict) else {})


def sentence_wise(item: Any, stage: str) -> bool:
    """Whether the guardrail ``item`` (as ``evaluate`` takes it) runs at ``stage`` and can decide on
    one sentence of a text (``Check.sentence_wise``)."""
    spec = _spec(item, stage)
    cls = CHECKS.get(spec.kind) if spec is not None else None
    return cls is not None and cls.sentence_wise


def evaluate(
    guardrails: Iterable[Any],
    text: str,
    *,
    stage: str,
    context: Mapping[str, Any] | None = None,
    sentence: bool = False,
) -> Verdict:
    """Apply ``guardrails`` in order to ``text`` at ``stage`` ("input", "retrieval" or "output").

    ``context`` may carry ``redactions`` (the mapping from earlier stages), ``passages`` (retrieved
    passages, numbered from 1, for ``citation_required``), ``screening`` (retrieval stage: what was
    stored with the passage at ingestion, see ``guardrails.screening``) and ``restore`` (output
    stage: put the incoming redacted values back into ``Verdict.text``). With ``sentence=True``
    ``text`` is one sentence and only the sentence-wise checks run. See the module docstring for the
    semantics.
    """
    if stage not in STAGES:
        raise ValueError(f"Unknown stage {stage!r}; expected one of {', '.join(STAGES)}.")
    if not isinstance(text, str):
        raise TypeError(f"evaluate() needs the text as a str, not {type(text).__name__}.")
    started = time.perf_counter()
    context = context or {}
    incoming: dict[str, str] = dict(context.get("redactions") or {})
    results: list[CheckResult] = []
    blocked_by: CheckResult | None = None
    redactions: list[Redaction] = []
    appends: list[tuple[str, str]] = []

    for item in guardrails:
        spec = _spec(item, stage)
        if spec is None or (sentence and not (spec.kind in CHECKS and CHECKS[spec.kind].sentence_wise)):
            continue
        result = CheckResult(spec.guardrail_id, spec.name, spec.kind, spec.action)
        results.append(result)
        if blocked_by is not None:
            result.status = SKIPPED
            result.message = f"Not run: already blocked by “{blocked_by.name}”."
            continue
        t0 = time.perf_counter()
        try:
            if spec.kind not in CHECKS:
                raise ValidationError(f"Unknown guardrail kind {spec.kind!r}.")
            check = build_check(spec.kind, spec.config)
            if spec.action not in check.actions:
                raise ValidationError(f"The action {spec.action!r} is not available for this kind.")
            finding = check.run(text, stage=stage, context=context)
        except ValidationError as exc:
            result.status = ERROR
            result.message = "The guardrail's configuration is invalid: " + " ".join(
                m for messages in _messages(exc) for m in messages
            )
        except Exception as exc:  # noqa: BLE001 - a guardrail failure must be recorded, never raised
            result.status = ERROR
            result.message = f"The guardrail could not run: {exc}"
        else:
            result.triggered = finding.triggered
            result.status = TRIGGERED if finding.triggered else PASSED
            result.message = finding.message
            result.spans = finding.spans
            result.signals = finding.signals
            result.details = finding.details
            if finding.triggered:
                if spec.action == "redact":
                    redactions.extend(finding.redactions)
                elif spec.action == "append" and finding.append:
                    appends.append((finding.append, finding.append_position))
        result.duration_ms = (time.perf_counter() - t0) * 1000
        if result.blocks:
            if result.status == ERROR:
                result.message += " Blocked to be safe."
            blocked_by = result

    mapping = dict(incoming)
    redacted_text, new_placeholders = _apply_redactions(text, redactions, mapping)
    if blocked_by is None:
        for notice, position in appends:
            if position == "start":
                redacted_text = f"{notice}\n\n{redacted_text}" if redacted_text else notice
            else:
                redacted_text = f"{redacted_text.rstrip()}\n\n{notice}" if redacted_text.strip() else notice
    final_text = redacted_text
    restored = False
    if stage == "output" and context.get("restore") and incoming:
        final_text = restore(redacted_text, incoming)
        restored = final_text != redacted_text
    return Verdict(
        stage=stage,
        text=final_text,
        redacted_text=redacted_text,
        blocked=blocked_by is not None,
        blocked_by=blocked_by,
        results=results,
        redactions=mapping,
        new_redactions=new_placeholders,
        restored=restored,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def restore(text: str, redactions: Mapping[str, str]) -> str:
    """Put the original values back for the placeholders of ``redactions`` found in ``text``.

    Placeholders are matched whatever their case (a model may write ``[iban_1]``); unknown ones stay.
    """
    if not redactions or "[" not in text:
        return text
    lookup = {key.upper(): value for key, value in redactions.items()}

    def replace(match: re.Match[str]) -> str:
        return lookup.get(match.group().upper(), match.group())

    return _PLACEHOLDER_ANY_CASE_RE.sub(replace, text)


def _apply_redactions(
    text: str, redactions: list[Redaction], mapping: dict[str, str]
) -> tuple[str, list[str]]:
    """Replace the (merged) ``redactions`` by placeholders, extending ``mapping``; return the new text
    and the placeholders created."""
    if not redactions:
        return text, []
    chosen: list[Redaction] = []
    for item in sorted(redactions, key=lambda r: (r.start, -(r.end - r.start))):
        if item.end <= item.start:
            continue
        if chosen and item.start < chosen[-1].end:
            continue
        chosen.append(item)
    counters: dict[str, int] = {}
    by_value: dict[tuple[str, str], str] = {}
    for placeholder, value in mapping.items():
        match = _PLACEHOLDER_RE.fullmatch(placeholder)
        if match:
            label, number = match.group(1), int(match.group(2))
            counters[label] = max(counters.get(label, 0), number)
            by_value[(label, value)] = placeholder
    created: list[str] = []
    parts: list[str] = []
    position = 0
    for item in chosen:
        value = text[item.start : item.end]
        placeholder = by_value.get((item.label, value))
        if placeholder is None:
            counters[item.label] = counters.get(item.label, 0) + 1
            placeholder = f"[{item.label}_{counters[item.label]}]"
            mapping[placeholder] = value
            by_value[(item.label, value)] = placeholder
            created.append(placeholder)
        parts.append(text[position : item.start])
        parts.append(placeholder)
        position = item.end
    parts.append(text[position:])
    return "".join(parts), created


def _messages(exc: ValidationError) -> list[list[str]]:
    if hasattr(exc, "error_dict"):
        return list(exc.message_dict.values())
    return [exc.messages]


def _placeholder_sort_key(placeholder: str) -> tuple[str, int]:
    match = _PLACEHOLDER_RE.fullmatch(placeholder)
    return (match.group(1), int(match.group(2))) if match else (placeholder, 0)
