"""Where client identifiers are in a text, for chunking: the stretches a cut must not fall inside.

The PII guardrail screens each retrieved passage alone, so an identifier the chunker cut in two
(an IBAN printed "DE89 3704 0044 0532 0130 00", cut after "0044") would reach the provider in halves
that neither screening recognises. Knowledge therefore asks, through its screening hook
(``knowledge.screening.register_identifier_finder``, registered by ``AgentsConfig.ready()``), where
the identifiers of a text are, and never cuts inside one, nor between an identifier and the keyword
its kind needs ("SSN", "UTR", "tel."…): a passage that starts after the keyword would hold a number
the check no longer recognises.

What is protected: every identifier the PII check finds in its default configuration (every kind),
and every run of digits that could be a number of another configuration — a guardrail may list
other telephone regions (up to 50 of the ~250 phonenumbers knows), the only setting that makes it
find more. Checking every region instead costs a hundred times more on a text full of numbers
(0.17 s instead of 0.002 s for 6 KB of invoices, references and amounts), while a run of six digits
or more (up to ``LONGEST_NUMBER`` characters with its separators) covers them all for the price of one
regular expression; amounts and dates are protected too, which costs only a cut a few characters
away. Each span is widened back to the keyword of any kind that needs one.

Knowledge asks for three things (``FINDER``): where a cut must not fall (``identifier_spans``, all of
the above), where the identifiers themselves are (``identifiers_found``), to keep together two
paragraphs an identifier runs across and to find the chunks an earlier chunker cut through one, and
whether a paragraph junction is worth that question at all (``may_cross``: a digit or an e-mail
address's "at", in any spelling the PII check accepts, near it). The quick test lives here, beside the
check whose spellings it must follow, so that knowledge holds no second rule that could fall behind.
"""

from __future__ import annotations

import re
from functools import cache

from guardrails.checks.normalize import fold_identifiers
from guardrails.checks.pii import _CLUSTER_RE, _CONTEXT, _CONTEXT_WINDOW, _EMAIL_HINT_RE, ENTITIES, PIICheck

#: The longest run of digits protected whole: a 34-character IBAN written in groups is 42.
LONGEST_NUMBER = 48
#: How far from a paragraph junction ``may_cross`` looks for a digit (every identifier but an e-mail
#: address holds one within a few characters of any of its positions, and the keyword announcing it
#: comes at most ``_CONTEXT_WINDOW`` before it), and after it for an e-mail address's "at" (the local part
#: before it is at most 64 characters).
_REACH = 90
#: How far before a junction the "at" of an e-mail address running across it may be: the PII check
#: finds an address reaching up to 260 characters past its "at" (the domain).
_EMAIL_REACH_BEFORE = 330
#: How much of each side is read: more than the reaches, for zero-width characters the view drops.
_FOLDED = 1000
_DIGIT_RE = re.compile(r"\d")


@cache
def _detector() -> PIICheck:
    from guardrails.checks import build_check

    return build_check("pii", {"entities": list(ENTITIES)})


_ALL_KEYWORDS = list(_CONTEXT.values())


def _widened(text: str, start: int, end: int, keywords=_ALL_KEYWORDS) -> tuple[int, int]:
    """``(start, end)`` reaching back to the nearest of ``keywords`` (by default: of each kind that needs
    one) before it."""
    window = max(0, start - _CONTEXT_WINDOW)
    widened = start
    for keyword in keywords:
        matches = list(keyword.finditer(text, window, start))
        if matches:
            widened = min(widened, matches[-1].start())
    return widened, end


def identifiers_found(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every identifier the PII check finds in ``text`` (every kind), each
    widened back to the keyword of its own kind announcing it (an e-mail address after "tel." or an
    "EIN" is not announced by it: widened, it would seem to run across a paragraph junction before it
    and report a cut where there is none); in text order, overlapping ones joined."""
    return _joined(
        _widened(text, start, end, [_CONTEXT[kind]] if kind in _CONTEXT else [])
        for start, end, kind in _detector().find(text)
    )


def identifier_spans(text: str) -> list[tuple[int, int]]:
    """Where a cut must not fall: ``identifiers_found`` and every run of digits that may be an
    identifier (with a "+" or "(" just before it), widened back to the keywords announcing it; in text
    order, overlapping ones joined."""
    spans = [(start, end) for start, end, _ in _detector().find(text)]
    for match in _CLUSTER_RE.finditer(text):
        start, end = match.span()
        if end - start <= LONGEST_NUMBER:
            spans.append((start - 1 if start and text[start - 1] in "+(" else start, end))
    return _joined(_widened(text, start, end) for start, end in spans)


def may_cross(left: str, right: str) -> bool:
    """Whether an identifier may run from the end of ``left`` into ``right`` once they are joined by a
    space — a quick test before ``identifiers_found``: False when nothing near the junction could
    belong to one. That is: no digit within ``_REACH`` characters on either side, and no "at" of an
    e-mail address (the PII check's hint: "@", "[at]", "(at)", "{at}") in the last
    ``_EMAIL_REACH_BEFORE`` characters of ``left`` or the first ``_REACH`` of ``right``. Read on the
    identifier view the PII check reads (fullwidth "＠" or digits unfolded, zero-width characters
    dropped), so that a spelling the check recognises is never skipped here."""
    before = fold_identifiers(left[-_FOLDED:]).text
    after = fold_identifiers(right[:_FOLDED]).text[:_REACH]
    return bool(
        _DIGIT_RE.search(before, max(0, len(before) - _REACH))
        or _DIGIT_RE.search(after)
        or _EMAIL_HINT_RE.search(before, max(0, len(before) - _EMAIL_REACH_BEFORE))
        or _EMAIL_HINT_RE.search(after)
    )


def _joined(spans) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _KnowledgeIdentifierFinder:
    """These functions as knowledge's identifier hook (``knowledge.screening.IdentifierFinder``) sees
    them; an instance pickles by reference to its class, so it reaches the parsing child."""

    spans = staticmethod(identifier_spans)
    identifiers = staticmethod(identifiers_found)
    may_cross = staticmethod(may_cross)


#: Registered with knowledge by ``AgentsConfig.ready()``.
FINDER = _KnowledgeIdentifierFinder()
