"""Matching of deny-list terms, shared by ``keywords`` and ``blocked_topics``.

Terms match on whole words. Unless ``case_sensitive`` is set they match on the normalised view of the
text (``normalize.fold``: case, accents, look-alike and zero-width characters, leetspeak, letters spelt
out one by one), the terms themselves normalised the same way; spaces inside a term match any run of
spaces or punctuation, so ``tax evasion`` also matches ``tax-evasion`` and ``tax  evasion``.
"""

from __future__ import annotations

import re

from guardrails.checks.normalize import fold


class TermMatcher:
    """All terms compiled into one alternation; ``finditer`` yields ``(start, end, term_index)``."""

    def __init__(self, terms: list[str], *, case_sensitive: bool = False, whole_words: bool = True):
        self.terms = terms
        self.case_sensitive = case_sensitive
        parts = []
        # Cheap substring test before the regex: the longest word of some term must occur.
        self.needles: set[str] = set()
        for index, term in enumerate(terms):
            normalised = term if case_sensitive else fold(term, join_spaced=False).text
            self.needles.add(max(normalised.split(), key=len))
            words = [re.escape(w) for w in normalised.split()]
            body = r"[\W_]*".join(words) if not case_sensitive else r"\s+".join(words)
            if whole_words:
                body = rf"(?<!\w){body}(?!\w)"
            parts.append(f"(?P<t{index}>{body})")
        self.pattern = re.compile("|".join(parts)) if parts else None

    def finditer(self, text: str):
        if self.pattern is None:
            return
        view = None if self.case_sensitive else fold(text)
        haystack = text if view is None else view.text
        if not any(needle in haystack for needle in self.needles):
            return
        for match in self.pattern.finditer(haystack):
            index = int(match.lastgroup[1:])
            start, end = match.span() if view is None else view.span(*match.span())
            yield start, end, index
