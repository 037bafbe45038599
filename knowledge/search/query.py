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
from functools import lru_cache

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


@lru_cache(maxsize=200_000)
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
    _matcher: Matcher | None = field(default=None, repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.phrases

    @property
    def stems(self) -> set[str]:
        words = list(self.terms) + [w for p in self.phrases for w in p]
        return {stem(w) for w in words if w not in STOPWORDS} or {stem(w) for w in words}

    @property
    def content_terms(self) -> list[str]:
        """The words that carry meaning: query terms without English stop words (all terms if the
        query has nothing else)."""
        content = [t for t in self.terms if t not in STOPWORDS]
        return content or list(self.terms)

    def fts5(self) -> str:
        """An FTS5 MATCH expression; every word is quoted so no user text is read as syntax."""
        content = self.content_terms
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
# A word matches a query word when it starts with that word's stem: ``Matcher.words`` finds them
# (highlights), ``_stems_found`` finds the same without a regular expression (re-ranking, where
# only which stems occur matters), so re-ranking a few dozen candidates costs a fraction of a ms.


@dataclass(frozen=True)
class Matcher:
    stems: tuple[str, ...]
    words: re.Pattern | None  # on the text as written (highlights need its offsets)
    phrases: tuple[re.Pattern, ...]  # what counts as "the exact phrase" for re-ranking
    phrase_patterns: tuple[re.Pattern, ...]  # one per quoted phrase


def _phrase_pattern(words: list[str]) -> re.Pattern:
    return re.compile(r"(?<!\w)" + r"\W+".join(re.escape(w) for w in words) + r"(?!\w)", re.IGNORECASE)


def matcher(query: ParsedQuery) -> Matcher:
    if query._matcher is not None:
        return query._matcher
    stems = tuple(sorted(query.stems, key=len, reverse=True))
    pattern = r"(?<!\w)(" + "|".join(re.escape(s) for s in stems) + r")\w*"
    words = re.compile(pattern, re.IGNORECASE) if stems else None
    if query.phrases:
        phrases = tuple(_phrase_pattern(p) for p in query.phrases)
    elif len(query.all_words) >= 2:
        phrases = (_phrase_pattern(query.all_words),)
    else:
        phrases = ()
    result = Matcher(stems, words, phrases, tuple(_phrase_pattern(p) for p in query.phrases))
    query._matcher = result
    return result


def features(query: ParsedQuery, text: str, heading_path: str = "") -> tuple[float, float]:
    """(coverage, phrase): the share of the query's word stems present in the passage (text or
    heading), and 1.0 when the passage contains the whole query (or every quoted phrase) as written,
    ignoring case and punctuation between the words."""
    m = matcher(query)
    if m.words is None:
        return 0.0, 0.0
    found = _stems_found(text.lower(), m.stems)
    if heading_path and len(found) < len(m.stems):
        found |= _stems_found(heading_path.lower(), m.stems)
    coverage = len(found) / len(m.stems)
    # The whole query as a phrase can only be there when all its words are (a cheap test first).
    possible = bool(m.phrases) and (bool(query.phrases) or coverage == 1.0)
    phrase = 1.0 if possible and all(p.search(text) for p in m.phrases) else 0.0
    return coverage, phrase


def _stems_found(lowered: str, stems: tuple[str, ...]) -> set[str]:
    """The stems that ``Matcher.words`` finds in ``lowered`` (``set(findall(...))``), with ``str.find``
    instead of the regular expression, three times faster: a stem counts where it starts a word (no
    word character before it) and no longer stem starts at the same place (the expression tries the
    stems longest first). ``stems`` are sorted longest first, as in ``Matcher``."""
    found: set[str] = set()
    for index, stem in enumerate(stems):
        longer = stems[:index]
        at = lowered.find(stem)
        while at != -1:
            before = lowered[at - 1] if at else ""
            if not (before.isalnum() or before == "_") and not any(lowered.startswith(s, at) for s in longer):
                found.add(stem)
                break
            at = lowered.find(stem, at + 1)
    return found


def highlight_spans(query: ParsedQuery, text: str) -> list[tuple[int, int]]:
    """Character offsets ``[start, end)`` of the words in ``text`` that match a query word."""
    m = matcher(query)
    if m.words is None:
        return []
    return [(match.start(), match.end()) for match in m.words.finditer(text)]


# --- Candidate tiers ---------------------------------------------------------------------------

# Passages are gathered in tiers so that a query made of common words never makes the database rank
# tens of thousands of rows: every passage containing all the query's words, then those missing one
# of them, then those missing two, then those containing any two, then any one — each looser tier
# only when the stricter ones found too few, each capped; the union is ranked by the engine.
#
# A cap keeps the first rows the index returns, in the table's physical order, so a tier that
# overflows its cap drops passages regardless of their relevance; documents stored later (usually
# the newer ones) lose first. The tiers between "all" and "any two" exist for that: a passage that
# has most of a long question's words sits in a small tier of its own instead of among thousands of
# passages sharing two common words. bench/retrieval.py ingests the judged documents after the
# distractor corpus, the unfavourable order, to measure it.
TIER_KINDS = ("all", "all_but_one", "all_but_two", "pairs", "any")
TIER_CAPS = {"all": 800, "all_but_one": 400, "all_but_two": 400, "pairs": 400, "any": 120}
#: The looser tiers combine the first this many units (a longer question keeps them affordable).
MAX_PAIR_TERMS = 8


def tier_caps(kinds: list[str], caps: dict[str, int] = TIER_CAPS) -> list[int]:
    """The caps of the tiers ``kinds``: a lone tier (one word) gets the largest cap."""
    if kinds == ["any"]:
        return [caps["all"]]
    return [caps[kind] for kind in kinds]


def tier_kinds(count: int) -> list[str]:
    """The tiers (``TIER_KINDS``) a query of ``count`` distinct units has, strictest first: "all" from
    two units on, "all_but_one" and "all_but_two" from four and five (with fewer they are the
    pairs), "pairs" from three, "any" always (none for no unit)."""
    if count < 1:
        return []
    m = min(count, MAX_PAIR_TERMS)
    wanted = {"all": count >= 2, "all_but_one": m >= 4, "all_but_two": m >= 5, "pairs": m >= 3, "any": True}
    return [kind for kind in TIER_KINDS if wanted[kind]]


def tiers(units: list, *, conjunction, disjunction) -> list[tuple[str, object]]:
    """``(kind, match expression)`` of each tier of ``tier_kinds``: all ``units`` (terms or phrases);
    all but one, all but two, or any two of the first ``MAX_PAIR_TERMS``; any one.

    ``conjunction`` and ``disjunction`` combine a list of sub-expressions into one: SQLite builds its
    FTS5 match strings with them, PostgreSQL the plan of unit numbers that ``knowledge_search``
    evaluates (``postgres.tier_plan``). This is the only place the tiers are defined.
    """
    units = list(dict.fromkeys(units))
    head = units[:MAX_PAIR_TERMS]

    def without(*left_out: int):
        return conjunction([u for k, u in enumerate(head) if k not in left_out])

    m = len(head)
    build = {
        "all": lambda: conjunction(units),
        "all_but_one": lambda: disjunction([without(i) for i in range(m)]),
        "all_but_two": lambda: disjunction([without(i, j) for i in range(m) for j in range(i + 1, m)]),
        "pairs": lambda: disjunction(
            [conjunction([a, b]) for i, a in enumerate(head) for b in head[i + 1 :]]
        ),
        "any": lambda: disjunction(units),
    }
    return [(kind, build[kind]()) for kind in tier_kinds(len(units))]
