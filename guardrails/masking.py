"""Client identifiers shown masked, and texts stored with placeholders: the PII detectors of
``guardrails.checks.pii`` put to two uses outside a run.

``mask_text`` is what every list, object name, audit entry and export shows in place of a client
identifier: ``DE89370400440532013000`` → ``DE89 •••• 3000``. It finds identifiers with the PII check
configured for every kind in ``ENTITIES`` (whatever guardrails the agent has: an agent without a PII
guardrail still has its identifiers masked), plus the values an object's own encrypted mapping knows
(``known``: found at run time by a guardrail configured otherwise, e.g. with more telephone regions),
in any spelling (``known_pattern``: the one matcher of known values, which the runtime's privacy
boundary uses too).

The masked form (``mask_value``) keeps a little of the compacted value (its letters and digits, upper
case), enough to tell two apart, never enough to use one:

- 16 characters or more (IBANs, card numbers): the first 4 and the last 4 — ``DE89 •••• 3000``;
- 8 to 15 (VAT numbers, telephone numbers, SSNs, NINOs, UTRs, EINs): the first 2 and the last 2 —
  ``DE •••• 76``, so that at least half of the value is hidden;
- fewer than 8: nothing — ``••••``;
- an e-mail address: the first character of the mailbox and the top-level domain — ``a••••@••••.com``
  (the domain often names the client).

``redact_texts`` is what a stored learning example holds: each identifier replaced by a typed
placeholder (``[IBAN_1]``, as the engine's ``redact`` action writes them), the mapping returned for
the caller to keep encrypted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import quote, quote_plus

from guardrails.checks.pii import DEFAULT_PHONE_REGIONS, ENTITIES, PIICheck

#: What stands for the hidden part of an identifier.
HIDDEN = "••••"
#: What a known value is replaced by before detection: no detector's pattern holds it, and it breaks
#: runs of digits, so nothing is found across it.
_BLANK = "#"

_PLACEHOLDER_RE = re.compile(r"\[([A-Z][A-Z0-9_]*)_(\d+)\]")
#: A key of a stored mapping that stands for no placeholder: a value a ``block`` or ``warn`` PII
#: guardrail found (``found:IBAN:1``). ``restore`` never matches it (it is no ``[…]`` placeholder);
#: masking (its value is known) and ``redact_texts`` (its label) use it.
_FOUND_RE = re.compile(r"found:([A-Z][A-Z0-9_]*):(\d+)")


def found_entries(found: Mapping[str, str], *, besides: Iterable[str] = ()) -> dict[str, str]:
    """``found`` (value → label, the values a run's ``block`` / ``warn`` PII guardrails found) as
    entries of a stored mapping (``found:IBAN:1`` → value), leaving out the values in ``besides``
    (those the mapping already has a placeholder for)."""
    skip = set(besides)
    entries: dict[str, str] = {}
    for n, (value, label) in enumerate(((v, lab) for v, lab in found.items() if v not in skip), start=1):
        entries[f"found:{label}:{n}"] = value
    return entries


@lru_cache(maxsize=1)
def detector() -> PIICheck:
    """The PII check with every entity and the default telephone regions (compiled once)."""
    return PIICheck(
        PIICheck.validate_config({"entities": list(ENTITIES), "phone_regions": DEFAULT_PHONE_REGIONS})
    )


def mask_value(value: str, entity: str | None = None) -> str:
    """``value`` (one identifier) in its masked form; ``entity`` (a key of ``ENTITIES``) only matters
    for e-mail addresses, which are also recognised by their ``@``."""
    if entity == "email" or "@" in value:
        mailbox, _, domain = value.strip().rpartition("@")
        tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
        first = mailbox[:1] if mailbox else ""
        return f"{first}{HIDDEN}@{HIDDEN}" + (f".{tld}" if tld else "")
    compact = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    if len(compact) >= 16:
        return f"{compact[:4]} {HIDDEN} {compact[-4:]}"
    if len(compact) >= 8:
        return f"{compact[:2]} {HIDDEN} {compact[-2:]}"
    return HIDDEN


#: What may separate the characters of a known value written another way ("DE89 3704…", "DE89-3704…").
_SEPARATOR = r"[\s\-]?"


@lru_cache(maxsize=1024)
def known_pattern(value: str) -> re.Pattern[str]:
    """``value`` (one a run knows is a client identifier) wherever it appears: whatever its case and
    its spaces or hyphens (a tool returns an IBAN typed "DE89 3704 …" as "DE89370400440532013000", a
    document heading writes it "de89 3704 …"), and URL-quoted (an HTTP tool's recorded URL); never
    inside a longer run of letters and digits.

    The one matcher of known values: masking (``mask_text``, ``redact_texts``) and the runtime's
    privacy boundary (``replace_known``) use it alike."""
    compact = re.sub(r"[\s\-]", "", value)
    forms = {re.escape(value), re.escape(quote(value, safe="")), re.escape(quote_plus(value))}
    if len(compact) >= 6:
        forms.add(_SEPARATOR.join(re.escape(c) for c in compact))
    alternatives = "|".join(sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def known_spans(text: str, known: Iterable[str]) -> list[tuple[int, int, str]]:
    """Where the ``known`` values occur in ``text``, in any spelling ``known_pattern`` matches, as
    ``(start, end, value)`` in text order: longest values first, no overlaps."""
    spans: list[tuple[int, int, str]] = []
    if not text:
        return spans
    for value in sorted({v for v in known if v and v.strip()}, key=len, reverse=True):
        for match in known_pattern(value).finditer(text):
            start, end = match.span()
            if not any(start < e and s < end for s, e, _ in spans):
                spans.append((start, end, value))
    spans.sort()
    return spans


def replace_known(text: str, redactions: Mapping[str, str]) -> str:
    """``text`` with every value of ``redactions`` (placeholder → value, a run's mapping) replaced by
    its placeholder, in any spelling (``known_pattern``)."""
    if not text or not redactions:
        return text
    placeholders: dict[str, str] = {}
    for placeholder, value in redactions.items():
        if value and value.strip():
            placeholders.setdefault(value, placeholder)
    parts: list[str] = []
    position = 0
    for start, end, value in known_spans(text, placeholders):
        parts.append(text[position:start])
        parts.append(placeholders[value])
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _find(text: str, known: Iterable[str]) -> list[tuple[int, int, str | None, str | None]]:
    """``find_identifiers`` with, for a known value, the value as known (its spelling in ``text`` may
    differ): ``(start, end, entity, value)``."""
    if not text:
        return []
    spans = known_spans(text, known)
    found: list[tuple[int, int, str | None, str | None]] = [(s, e, None, v) for s, e, v in spans]
    # The detectors look at the text with the known values blanked out (same length, so spans still
    # point into ``text``): they need not validate them again — the costly part of detection.
    probe = text
    for start, end, _ in spans:
        probe = probe[:start] + _BLANK * (end - start) + probe[end:]
    for start, end, entity in detector().find(probe):
        if not any(start < e and s < end for s, e, _, _ in found):
            found.append((start, end, entity, None))
    found.sort(key=lambda f: (f[0], f[1]))
    return found


def find_identifiers(text: str, *, known: Iterable[str] = ()) -> list[tuple[int, int, str | None]]:
    """Every identifier in ``text`` as ``(start, end, entity)`` in text order: the ``known`` values
    (entity None, in any spelling ``known_pattern`` matches) first, then what the detectors find
    elsewhere."""
    return [(start, end, entity) for start, end, entity, _ in _find(text, known)]


def mask_text(text: str, *, known: Iterable[str] = ()) -> str:
    """``text`` with every client identifier in its masked form (``mask_value``)."""
    if not text:
        return text
    parts: list[str] = []
    position = 0
    for start, end, entity in find_identifiers(text, known=known):
        parts.append(text[position:start])
        parts.append(mask_value(text[start:end], entity))
        position = end
    parts.append(text[position:])
    return "".join(parts)


def mask_data(value, *, known: Iterable[str] = ()):
    """``value`` (a string, or lists and dicts of them, as a trace step holds) with every string masked."""
    known = tuple(known)
    if isinstance(value, str):
        return mask_text(value, known=known)
    if isinstance(value, list):
        return [mask_data(v, known=known) for v in value]
    if isinstance(value, dict):
        return {k: mask_data(v, known=known) for k, v in value.items()}
    return value


def redact_texts(
    texts: list[str], *, known: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """``texts`` with every client identifier replaced by a typed placeholder, numbered across all of
    them (the same value keeps its placeholder), and the mapping placeholder → value.

    ``known``: a mapping (placeholder → value, as an execution keeps) whose values are redacted
    wherever they occur, with their own label, even where the detectors would not find them."""
    labels = {}
    for placeholder, value in (known or {}).items():
        match = _PLACEHOLDER_RE.fullmatch(placeholder) or _FOUND_RE.fullmatch(placeholder)
        if match and value:
            labels.setdefault(value, match.group(1))
    mapping: dict[str, str] = {}
    by_value: dict[tuple[str, str], str] = {}
    counters: dict[str, int] = {}
    out: list[str] = []
    for text in texts:
        parts: list[str] = []
        position = 0
        for start, end, entity, known_value in _find(text, labels):
            # A known value keeps its label, and its known spelling (one placeholder per value).
            value = known_value if known_value is not None else text[start:end]
            label = ENTITIES[entity] if entity else labels[value]
            placeholder = by_value.get((label, value))
            if placeholder is None:
                counters[label] = counters.get(label, 0) + 1
                placeholder = f"[{label}_{counters[label]}]"
                mapping[placeholder] = value
                by_value[(label, value)] = placeholder
            parts.append(text[position:start])
            parts.append(placeholder)
            position = end
        parts.append(text[position:])
        out.append("".join(parts))
    return out, mapping
