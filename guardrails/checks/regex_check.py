"""``regex``: patterns written by the firm (client codes, internal project names…).

Patterns are compiled with the ``regex`` package when the configuration is saved: a syntax error is
reported with its position, and each pattern is tried on adversarial inputs under a time limit so that
one with catastrophic backtracking (``(a+)+$``) is refused. At run time every search has a timeout
(``timeout_ms``) and the text is capped at ``MAX_INPUT`` characters; a search that times out is an
error, which the engine treats as a block when the action is block (fail closed).

Configuration::

    {"patterns": ["\\bPRJ-[0-9]{4}\\b", {"pattern": "falcon", "label": "PROJECT"}],
     "ignore_case": true,
     "label": "REDACTED",       # default placeholder label for redaction: [REDACTED_1]
     "timeout_ms": 20}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import regex

from guardrails.checks.base import Check, ConfigError, Finding, Redaction, get_bool, get_int, reject_unknown
from guardrails.checks.keywords import _LABEL_RE, validate_label

MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 1000
MAX_INPUT = 200_000
_SAVE_TIME_LIMIT = 0.05  # seconds per adversarial probe
_PROBES = [
    "a" * 4000 + "!",
    "1" * 4000 + "x",
    ("ab" * 2000) + "\n",
    " " * 4000 + "!",
    "aaaa@aaaa." * 400,
    ("a1 " * 1300) + "!",
    "x" * 2000 + "y" * 2000,
]


class RegexTimeout(Exception):
    """A pattern took longer than its time limit."""


class RegexCheck(Check):
    kind = "regex"
    sentence_wise = True
    actions = frozenset({"block", "redact", "warn"})
    example_config: ClassVar[dict[str, Any]] = {"patterns": [r"\bCLT-\d{6}\b"], "label": "CLIENT_REF"}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"patterns", "ignore_case", "label", "timeout_ms"}, errors)
        ignore_case = get_bool(config, "ignore_case", False, errors)
        label = validate_label(config, "REDACTED", errors)
        timeout_ms = get_int(config, "timeout_ms", 20, errors, minimum=1, maximum=500)
        raw = config.get("patterns")
        patterns: list[dict[str, str]] = []
        if not isinstance(raw, list) or not raw:
            errors.append("'patterns' must be a non-empty list of regular expressions.")
            raw = []
        if len(raw) > MAX_PATTERNS:
            errors.append(f"'patterns' may list at most {MAX_PATTERNS} patterns.")
        flags = regex.IGNORECASE if ignore_case else 0
        for position, item in enumerate(raw, start=1):
            entry = {"pattern": item} if isinstance(item, str) else item
            if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
                errors.append(f'Pattern {position} must be a string or {{"pattern": …, "label": …}}.')
                continue
            extra = sorted(set(entry) - {"pattern", "label"})
            if extra:
                errors.append(f"Pattern {position}: unknown setting(s) {', '.join(extra)}.")
            source = entry["pattern"]
            item_label = entry.get("label", label)
            if not isinstance(item_label, str) or not _LABEL_RE.match(item_label):
                errors.append(
                    f"Pattern {position}: 'label' must be upper-case letters, digits or underscores."
                )
                continue
            if not source:
                errors.append(f"Pattern {position} is empty.")
                continue
            if len(source) > MAX_PATTERN_LENGTH:
                errors.append(f"Pattern {position} is longer than {MAX_PATTERN_LENGTH} characters.")
                continue
            try:
                compiled = regex.compile(source, flags | regex.VERSION0)
            except regex.error as exc:
                where = f" at position {exc.pos}" if getattr(exc, "pos", None) is not None else ""
                errors.append(f"Pattern {position} is not a valid regular expression{where}: {exc.msg}.")
                continue
            if compiled.search(""):
                errors.append(f"Pattern {position} matches the empty string, so it would match everywhere.")
                continue
            if not _is_fast(compiled):
                errors.append(
                    f"Pattern {position} takes too long on some inputs (catastrophic backtracking, for "
                    "example nested repetition such as (a+)+); simplify it."
                )
                continue
            patterns.append({"pattern": source, "label": item_label})
        if errors:
            raise ConfigError(errors)
        return {"patterns": patterns, "ignore_case": ignore_case, "label": label, "timeout_ms": timeout_ms}

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        flags = regex.IGNORECASE if config["ignore_case"] else 0
        self.patterns = [
            (regex.compile(p["pattern"], flags | regex.VERSION0), p["label"]) for p in config["patterns"]
        ]
        self.timeout = config["timeout_ms"] / 1000

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        haystack = text[:MAX_INPUT]
        hits: list[tuple[int, int, str, int]] = []
        try:
            for index, (pattern, label) in enumerate(self.patterns):
                for match in pattern.finditer(haystack, timeout=self.timeout, overlapped=False):
                    if match.end() > match.start():
                        hits.append((match.start(), match.end(), label, index))
        except TimeoutError as exc:
            raise RegexTimeout(
                f"Pattern {index + 1} exceeded its time limit of {self.timeout * 1000:.0f} ms."
            ) from exc
        if not hits:
            return Finding(False, "No pattern matched.")
        hits.sort()
        matched = sorted({i + 1 for *_, i in hits})
        return Finding(
            True,
            f"Pattern(s) {', '.join(map(str, matched))} matched {len(hits)} time(s).",
            spans=[(s, e, label) for s, e, label, _ in hits],
            details={"patterns": matched, "count": len(hits), "truncated": len(text) > MAX_INPUT},
            redactions=[Redaction(s, e, label, text[s:e]) for s, e, label, _ in hits],
        )


def _is_fast(compiled: regex.Pattern) -> bool:
    """Whether ``compiled`` stays within the time limit on inputs known to trigger backtracking: long
    runs of each character the pattern names, then a character that makes the match fail."""
    literals = {ch for ch in compiled.pattern if ch.isalnum()} | {"a", "1", " "}
    probes = _PROBES + [ch * 3000 + "!" for ch in sorted(literals)[:40]]
    for probe in probes:
        try:
            for _ in compiled.finditer(probe, timeout=_SAVE_TIME_LIMIT):
                pass
        except TimeoutError:
            return False
    return True
