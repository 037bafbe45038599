"""Where client identifiers are in a text, for chunking: the stretches a cut must not fall inside.

The PII guardrail screens each retrieved passage alone, so an identifier the chunker cut in two
(an IBAN printed "DE89 3704 0044 0532 0130 00", cut after "0044") would reach the provider in halves
that neither screening recognises. Knowledge therefore asks, through its screening hook
(``knowledge.screening.register_identifier_finder``, registered by ``AgentsConfig.ready()``), where
the identifiers of a text are, and never cuts inside one, nor between an identifier and the keyword
its kind needs ("SSN", "UTR", "tel."…): a passage that starts after the keyword would hold a number
the check no longer recognises.

The detector is the PII check itself in its broadest configuration — every kind, national telephone
numbers of every region phonenumbers knows (a guardrail may list at most 50), no allow-list — so that
what an agent's guardrail is configured to find is protected here too. Protecting a span too many
costs only a cut a few characters away; the broader search costs about twice the default one (0.14 s
instead of 0.06 s for 23 KB holding 300 numbers), on the few paragraphs long enough to be cut.

``identifier_spans`` is a module-level function so that it can be handed to the parsing child
process (``knowledge.ingest.isolation``) by reference.
"""

from __future__ import annotations

from functools import cache

import phonenumbers

from guardrails.checks.pii import _CONTEXT, _CONTEXT_WINDOW, ENTITIES, PIICheck

# Kinds whose number counts only with a keyword shortly before it (a telephone number written
# nationally, an SSN without separators, an EIN, a UTR): the keyword belongs to the protected span.
_ANNOUNCED = ("us_ssn", "us_ein", "uk_utr", "phone")


@cache
def _detector() -> PIICheck:
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    return PIICheck({"entities": list(ENTITIES), "allow": [], "phone_regions": regions})


def identifier_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every identifier in ``text``, in text order, each widened back to the
    keyword announcing it when its kind may need one (spans may then overlap)."""
    spans = []
    for start, end, entity in _detector().find(text):
        if entity in _ANNOUNCED:
            window_start = max(0, start - _CONTEXT_WINDOW)
            keywords = list(_CONTEXT[entity].finditer(text, window_start, start))
            if keywords:
                start = keywords[-1].start()
        spans.append((start, end))
    return spans
