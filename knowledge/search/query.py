"""The search query as the user typed it, understood the same way on both databases.

Supported syntax (a subset of web search syntax): words, ``"quoted phrases"`` and ``-excluded``
words. Words are OR-ed for recall (a question in plain language still finds passages that share only
some of its words); ranking then rewards passages that contain more of the words, and most of all the
whole query or a quoted phrase as written.

The crude stemmer here is only used to re-rank candidates and to place highlights; the databases do
the real matching with their own stemmers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\w+", re.UNICODE)
_QUERY_PART = re.compile(r'(-?)"([^"]*)"|(-?)([^\s"]+)')

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves must may shall""".split()
)


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def stem(word: str) -> str:
    """A light English suffix stripper: enough to match 'charges'/'charged'/'charge'."""
    w = word.lower()
    if len(w) <= 3 or w.isdigit():
        return w
    for suffix, keep in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("iveness", "ive"),
        ("fulness", "ful"),
        ("ousness", "ous"),
        ("ations", "ate"),
        ("ation", "ate"),
        ("ments", ""),
        ("ment", ""),
        ("ingly", ""),
        ("edly", ""),
        ("ings", ""),
        ("ing", ""),
        ("ies", "y"),
        ("ied", "y"),
        ("ness", ""),
        ("ers", ""),
        ("er", ""),
        ("ed", ""),
        ("es", ""),
        ("ly", ""),
        ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) + len(keep) >= 3:
            w = w[: len(w) - len(suffix)] + keep
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


@dataclass
class ParsedQuery:
    """``terms``: words to OR; ``phrases``: quoted phrases (lists of words); ``excluded``: -words."""

    raw: str
    terms: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    all_words: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.phrases

    @property
    def stems(self) -> set[str]:
        words = list(self.terms) + [w for p in self.phrases for w in p]
        return {stem(w) for w in words if w not in STOPWORDS} or {stem(w) for w in words}

    def websearch(self) -> str:
        """A ``websearch_to_tsquery`` string: phrases and words joined by ``or``."""
        parts = [f'"{" ".join(p)}"' for p in self.phrases] + [t for t in self.terms if t != "or"]
        return " or ".join(parts)

    def websearch_excluded(self) -> str:
        return " or ".join(w for w in self.excluded if w != "or")

    def fts5(self) -> str:
        """An FTS5 MATCH expression; every word is quoted so no user text is read as syntax."""
        content = [t for t in self.terms if t not in STOPWORDS] or self.terms
        parts = ['"' + " ".join(p) + '"' for p in self.phrases] + [f'"{t}"' for t in content]
        expression = " OR ".join(parts)
        if self.excluded and expression:
            expression = f"({expression}) NOT (" + " OR ".join(f'"{w}"' for w in self.excluded) + ")"
        return expression


def parse_query(raw: str) -> ParsedQuery:
    query = ParsedQuery(raw=raw or "")
    for match in _QUERY_PART.finditer(query.raw):
        negated_phrase, phrase, negated_word, word = match.groups()
        if phrase is not None:
            words = tokens(phrase)
            if not words:
                continue
            if negated_phrase:
                query.excluded.extend(words)
            elif len(words) == 1:
                query.terms.append(words[0])
            else:
                query.phrases.append(words)
            query.all_words.extend(words if not negated_phrase else [])
            continue
        words = tokens(word or "")
        if negated_word and word and len(word) > 1 and words:
            query.excluded.extend(words)
            continue
        query.terms.extend(words)
        query.all_words.extend(words)
    # Keep order, drop repeats.
    query.terms = list(dict.fromkeys(query.terms))
    query.excluded = list(dict.fromkeys(query.excluded))
    return query


# --- Re-ranking features and highlights --------------------------------------------------------


def _contains_sequence(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    first = needle[0]
    for i, word in enumerate(haystack[: len(haystack) - n + 1]):
        if word == first and haystack[i : i + n] == needle:
            return True
    return False


def features(query: ParsedQuery, text: str, heading_path: str = "") -> tuple[float, float]:
    """(coverage, phrase): the share of the query's word stems present in the passage, and 1.0 when
    the passage contains the whole query (or every quoted phrase) as a contiguous phrase."""
    words = tokens(text)
    stems_present = {stem(w) for w in words} | {stem(w) for w in tokens(heading_path)}
    wanted = query.stems
    coverage = len(wanted & stems_present) / len(wanted) if wanted else 0.0
    phrase = 0.0
    if query.phrases:
        if all(_contains_sequence(words, p) for p in query.phrases):
            phrase = 1.0
    elif len(query.all_words) >= 2 and _contains_sequence(words, query.all_words):
        phrase = 1.0
    return coverage, phrase


def highlight_spans(query: ParsedQuery, text: str) -> list[tuple[int, int]]:
    """Character offsets of the words in ``text`` that match a query word (by stem)."""
    wanted = query.stems
    if not wanted:
        return []
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text) if stem(m.group()) in wanted]
