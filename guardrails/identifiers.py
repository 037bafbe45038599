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

Knowledge asks for two things (``FINDER``): where a cut must not fall (``identifier_spans``, all of the
above), and where the identifiers themselves are (``identifiers_found``), to keep together two
paragraphs an identifier runs across and to find the chunks an earlier chunker cut through one.
"""

from __future__ import annotations

from functools import cache

from guardrails.checks.pii import _CLUSTER_RE, _CONTEXT, _CONTEXT_WINDOW, ENTITIES, PIICheck

#: The longest run of digits protected whole: a 34-character IBAN written in groups is 42.
LONGEST_NUMBER = 48


@cache
def _detector() -> PIICheck:
    from guardrails.checks import build_check

    return build_check("pii", {"entities": list(ENTITIES)})


def _widened(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` reaching back to the nearest keyword of each kind that needs one before it."""
    window = max(0, start - _CONTEXT_WINDOW)
    widened = start
    for keyword in _CONTEXT.values():
        matches = list(keyword.finditer(text, window, start))
        if matches:
            widened = min(widened, matches[-1].start())
    return widened, end


def identifiers_found(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every identifier the PII check finds in ``text`` (every kind), each
    widened back to the keywords announcing it; in text order, overlapping ones joined."""
    return _joined(_widened(text, start, end) for start, end, _ in _detector().find(text))


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


#: Registered with knowledge by ``AgentsConfig.ready()``.
FINDER = _KnowledgeIdentifierFinder()
