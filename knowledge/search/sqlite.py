"""SQLite full-text search: an external-content FTS5 table with Porter stemming, ranked by bm25.

``knowledge_chunk_fts`` indexes ``heading_path`` and ``text`` of ``knowledge_chunk`` (rowid = chunk
id); triggers keep it in sync on insert, update and delete, whoever writes the rows. bm25 scores
(negative, lower is better) are mapped to [0, 1) so that a minimum score means roughly the same on
both databases.
"""

from __future__ import annotations

import datetime
import json
import math

from knowledge.search.candidates import document_filter, tier_ctes
from knowledge.search.query import ParsedQuery, matcher, stem, tier_caps, tiers

# Smaller than PostgreSQL's: the candidates are scored in Python.
SQLITE_TIER_CAPS = {"all": 300, "all_but_one": 150, "all_but_two": 150, "pairs": 150, "any": 60}
# BM25 of a good match is typically 5-15; this maps it into [0, 1).
BM25_SCALE = 8.0


def candidates(
    cursor,
    *,
    query: ParsedQuery,
    config: str,
    knowledge_base_ids: list[int],
    as_of: datetime.date | None,
    jurisdictions: list[str] | None,
    limit: int,
) -> list[tuple]:
    """Rows (chunk id, document id, ordinal, text, page, heading path, title, kb id, score in [0, 1),
    screening as JSON text or None).

    One query gathers the capped candidate tiers (all words, all but one or two, any two, any one;
    see ``query.tiers``) with their rows, each unit's document frequency (FTS5 ``MATCH`` counts) and
    the corpus size; the candidates are then scored with BM25 here. FTS5's own ``bm25()`` would score every row matching
    the query before sorting, which for common words over 100,000 chunks takes far too long.
    Every word is quoted, so nothing the user types is read as FTS5 syntax.
    """
    phrase_units = ['"' + " ".join(p) + '"' for p in query.phrases]
    term_units = [f'"{t}"' for t in query.content_terms]
    units = list(dict.fromkeys(phrase_units + term_units))
    kinds_expressions = tiers(
        units,
        conjunction=lambda parts: "(" + " AND ".join(parts) + ")",
        disjunction=lambda parts: " OR ".join(parts),
    )
    if not kinds_expressions:
        return []
    kinds = [kind for kind, _ in kinds_expressions]
    expressions = [expression for _, expression in kinds_expressions]
    if query.excluded:
        excluded = " OR ".join(f'"{w}"' for w in query.excluded)
        expressions = [f"({e}) NOT ({excluded})" for e in expressions]
    caps = tier_caps(kinds, SQLITE_TIER_CAPS)
    filters = document_filter(
        as_of="%(as_of)s",
        jurisdictions="%(jurisdictions)s",
        is_one_of=lambda column, values: f"{column} IN (SELECT value FROM json_each({values}))",
    )
    kb_placeholders = ", ".join(f"%(kb{i})s" for i in range(len(knowledge_base_ids)))
    ctes = tier_ctes(
        len(expressions),
        select=(
            "SELECT c.id FROM knowledge_chunk_fts\n"
            "          JOIN knowledge_chunk c ON c.id = knowledge_chunk_fts.rowid\n"
            "          JOIN knowledge_document d ON d.id = c.document_id"
        ),
        conditions=lambda k: [
            f"knowledge_chunk_fts MATCH %(tier{k})s",
            f"d.knowledge_base_id IN ({kb_placeholders})",
            filters,
        ],
        cap=lambda k: str(int(caps[k])),
        limit="%(limit)s",
    )
    params = {
        **{f"tier{k}": expression for k, expression in enumerate(expressions)},
        **{f"kb{i}": kb_id for i, kb_id in enumerate(knowledge_base_ids)},
        **{f"unit{i}": unit for i, unit in enumerate(units)},
        "as_of": as_of.isoformat() if as_of is not None else None,
        "jurisdictions": json.dumps(jurisdictions) if jurisdictions else None,
        "limit": limit,
    }
    union = " UNION ".join(f"SELECT id FROM t{i}" for i in range(len(expressions)))
    frequencies = ", ".join(
        f"(SELECT count(*) FROM knowledge_chunk_fts WHERE knowledge_chunk_fts MATCH %(unit{i})s) AS df{i}"
        for i in range(len(units))
    )
    cursor.execute(
        f"""
        WITH {", ".join(ctes)}, candidates AS ({union}),
             stats AS (SELECT (SELECT max(id) FROM knowledge_chunk) AS n, {frequencies})
        SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path, d.title,
               d.knowledge_base_id, c.screening, stats.*
          FROM candidates
          JOIN knowledge_chunk c ON c.id = candidates.id
          JOIN knowledge_document d ON d.id = c.document_id
         CROSS JOIN stats
        """,
        params,
    )
    rows = cursor.fetchall()
    if not rows:
        return []
    total = max(rows[0][9] or 1, 1)
    frequencies_by_unit = dict(zip(units, rows[0][10:], strict=True))
    scored = []
    for row in rows:
        raw = _bm25(query, row[3], row[5] or "", total, frequencies_by_unit)
        scored.append((*row[:8], raw / (raw + BM25_SCALE) if raw > 0 else 0.0, row[8]))
    scored.sort(key=lambda r: (-r[8], r[0]))
    return scored[:limit]


BM25_K1 = 1.2
BM25_B = 0.75
AVERAGE_WORDS = 150  # words in a typical chunk (the default chunk size of 1,200 characters)
HEADING_WEIGHT = 2.0


def _bm25(query: ParsedQuery, text: str, heading: str, total: int, frequencies: dict[str, int]) -> float:
    """BM25 of one passage: term frequencies from the query's matcher (stems and phrases), document
    frequencies from the FTS5 index; heading matches count double."""
    m = matcher(query)
    length = max(1, len(text) // 6) / AVERAGE_WORDS
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length)
    counts: dict[str, float] = {}
    if m.words is not None:
        for found in m.words.findall(text):
            counts[found.lower()] = counts.get(found.lower(), 0) + 1
        if heading:
            for found in m.words.findall(heading):
                counts[found.lower()] = counts.get(found.lower(), 0) + HEADING_WEIGHT
    score = 0.0
    for term in query.content_terms:
        tf = counts.get(stem(term), 0)
        if tf:
            df = frequencies.get(f'"{term}"', 0) or 1
            idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
            score += idf * tf * (BM25_K1 + 1) / (tf + norm)
    for words, pattern in zip(query.phrases, m.phrase_patterns, strict=True):
        tf = len(pattern.findall(text))
        if tf:
            df = frequencies.get('"' + " ".join(words) + '"', 0) or 1
            idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
            score += idf * tf * (BM25_K1 + 1) / (tf + norm)
    return score
