"""``citation_required`` (output): the answer cites at least N of the retrieved passages.

Citations are bracketed passage numbers that refer to the passages in ``context["passages"]``
(numbered from 1 in the order given, as they are shown to the model): ``[1]``, ``[2, 3]``, ``[1-3]``,
``[1][4]``, ``[source 2]``. A number with no such passage is reported as invalid and does not count.
Sentences of at least ``min_sentence_words`` words that carry no citation are listed as ``uncited``
spans; with ``max_uncited`` set, more uncited sentences than that also trigger the check.

When nothing was retrieved there is nothing to cite: the check passes unless ``require_passages``.

Configuration::

    {"min_citations": 1, "max_uncited": null, "min_sentence_words": 6, "require_passages": false}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from guardrails.checks.base import Check, ConfigError, Finding, get_bool, get_int, reject_unknown

# A citation marker; the runtime renumbers the same markers (``agents.runtime.citations``).
MARKER_RE = re.compile(
    r"\[(?:\^|(?:passage|source|doc|document|ref)\s*#?\s*)?(\d{1,3}(?:\s*(?:[,;]|[-–])\s*\d{1,3})*)\]",
    re.I,
)
# The end of a sentence: its punctuation and the citations right after it, or a line break.
_SENTENCE_END_RE = re.compile(r"[.!?]+(?:[ \t]*\[[^\]\n]{1,40}\])*(?=\s|$)|\n")
_WORD_RE = re.compile(r"[^\W\d_]{2,}")


def sentences(text: str):
    """``(start, end)`` of each sentence of ``text`` (blank ones skipped, surrounding blanks trimmed)."""
    position = 0
    for end in _SENTENCE_END_RE.finditer(text):
        yield from _trimmed(text, position, end.end())
        position = end.end()
    yield from _trimmed(text, position, len(text))


def _trimmed(text: str, start: int, end: int):
    body = text[start:end]
    stripped = body.strip()
    if stripped:
        offset = start + body.index(stripped[0])
        yield offset, offset + len(stripped)


def marker_numbers(group: str) -> list[int]:
    """The numbers of a marker's inside (``"2, 4"``, ``"2-4"``) in the order written, each once, a
    range's ascending (``agents.runtime.citations`` renumbers them in this order)."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            low, high = int(bounds[0]), int(bounds[1])
            if 0 < high - low < 50:
                numbers.extend(range(low, high + 1))
                continue
        numbers.extend(int(b) for b in bounds if b.isdigit())
    return list(dict.fromkeys(numbers))


class CitationRequiredCheck(Check):
    kind = "citation_required"
    actions = frozenset({"block", "warn"})
    stages = frozenset({"output"})
    example_config: ClassVar[dict[str, Any]] = {"min_citations": 1, "max_uncited": None}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(
            config, {"min_citations", "max_uncited", "min_sentence_words", "require_passages"}, errors
        )
        min_citations = get_int(config, "min_citations", 1, errors, minimum=1, maximum=50)
        max_uncited = get_int(config, "max_uncited", None, errors, minimum=0, maximum=1000)
        min_words = get_int(config, "min_sentence_words", 6, errors, minimum=1, maximum=100)
        require = get_bool(config, "require_passages", False, errors)
        if errors:
            raise ConfigError(errors)
        return {
            "min_citations": min_citations,
            "max_uncited": max_uncited,
            "min_sentence_words": min_words,
            "require_passages": require,
        }

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        passages = list(context.get("passages") or [])
        available = len(passages)
        cited: set[int] = set()
        invalid: set[int] = set()
        spans = []
        for match in MARKER_RE.finditer(text):
            numbers = set(marker_numbers(match.group(1)))
            good = {n for n in numbers if 1 <= n <= available}
            cited |= good
            invalid |= numbers - good
            spans.append((match.start(), match.end(), "citation" if good == numbers else "invalid_citation"))
        uncited = []
        min_words = self.config["min_sentence_words"]
        for start, end in sentences(text):
            body = text[start:end]
            if len(body.split()) < min_words or ("[" in body and MARKER_RE.search(body)):
                continue
            if len(_WORD_RE.findall(body)) >= min_words:
                uncited.append((start, end, "uncited"))
        details = {
            "passages": available,
            "cited": sorted(cited),
            "invalid": sorted(invalid),
            "uncited_sentences": len(uncited),
        }
        spans += uncited
        spans.sort()
        if available == 0:
            if self.config["require_passages"]:
                return Finding(
                    True, "No passages were retrieved, so the answer cannot cite any.", spans, details=details
                )
            return Finding(False, "No passages were retrieved; nothing to cite.", spans, details=details)
        needed = min(self.config["min_citations"], available)
        problems = []
        if len(cited) < needed:
            problems.append(f"cites {len(cited)} of the {available} passages (at least {needed} required)")
        max_uncited = self.config["max_uncited"]
        if max_uncited is not None and len(uncited) > max_uncited:
            problems.append(f"{len(uncited)} sentences without a citation (at most {max_uncited} allowed)")
        if invalid:
            note = f" Citation(s) {', '.join(map(str, sorted(invalid)))} refer to no retrieved passage."
        else:
            note = ""
        if problems:
            return Finding(True, f"The answer {'; '.join(problems)}.{note}", spans, details=details)
        return Finding(False, f"The answer cites {len(cited)} passage(s).{note}", spans, details=details)
