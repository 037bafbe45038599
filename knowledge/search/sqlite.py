"""SQLite full-text search: an external-content FTS5 table with Porter stemming, ranked by bm25.

``knowledge_chunk_fts`` indexes ``heading_path`` and ``text`` of ``knowledge_chunk`` (rowid = chunk
id); triggers keep it in sync on insert, update and delete, whoever writes the rows. bm25 scores
(negative, lower is better) are mapped to [0, 1) so that a minimum score means roughly the same on
both databases.
"""

from __future__ import annotations

import datetime

from knowledge.search.postgres import tier_caps
from knowledge.search.query import ParsedQuery, tiers

INSTALL_SQL = [
    """
    CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5(
        heading_path, text, content='knowledge_chunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(rowid, heading_path, text)
        VALUES (new.id, new.heading_path, new.text);
    END
    """,
    """
    CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
    END
    """,
    """
    CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
        INSERT INTO knowledge_chunk_fts(rowid, heading_path, text)
        VALUES (new.id, new.heading_path, new.text);
    END
    """,
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')",
]

UNINSTALL_SQL = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
]

# bm25 of a good match over a few thousand passages is typically 5-15; this maps it into [0, 1).
BM25_SCALE = 8.0


def install(schema_editor) -> None:
    """Create (or recreate) the FTS5 table and its triggers and index the existing chunks."""
    for statement in UNINSTALL_SQL + INSTALL_SQL:
        schema_editor.execute(statement)


def uninstall(schema_editor) -> None:
    for statement in UNINSTALL_SQL:
        schema_editor.execute(statement)


def _filters(as_of: datetime.date | None, jurisdictions: list[str] | None) -> tuple[str, list]:
    clauses = ["d.status IN ('ready', 'processing')"]
    params: list = []
    if as_of is not None:
        clauses.append("(d.effective_from IS NULL OR d.effective_from <= %s)")
        clauses.append("(d.effective_to IS NULL OR d.effective_to >= %s)")
        params += [as_of.isoformat(), as_of.isoformat()]
    if jurisdictions:
        clauses.append(f"d.jurisdiction IN (''{', %s' * len(jurisdictions)})")
        params += jurisdictions
    return " AND ".join(clauses), params


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
    """Rows (chunk id, document id, ordinal, text, page, heading path, title, kb id, score in [0, 1)).

    One query: capped candidate tiers (all words, two of them, any; see ``query.tiers``), then bm25
    over their union only. Every word is quoted, so nothing the user types is read as FTS5 syntax.
    """
    units = ['"' + " ".join(p) + '"' for p in query.phrases] + [f'"{t}"' for t in query.content_terms]
    expressions = tiers(
        units,
        conjunction=lambda parts: "(" + " AND ".join(parts) + ")",
        disjunction=lambda parts: " OR ".join(parts),
    )
    if not expressions:
        return []
    if query.excluded:
        excluded = " OR ".join(f'"{w}"' for w in query.excluded)
        expressions = [f"({e}) NOT ({excluded})" for e in expressions]
    filters, params = _filters(as_of, jurisdictions)
    placeholders = ", ".join(["%s"] * len(knowledge_base_ids))
    # A looser tier runs only when the stricter ones found fewer than ``limit`` candidates.
    tier_sql, tier_params = [], []
    for index, (expression, cap) in enumerate(zip(expressions, tier_caps(len(expressions)), strict=True)):
        needed = ""
        if index:
            needed = " AND " + " + ".join(f"(SELECT count(*) FROM t{i})" for i in range(index)) + " < %s"
        tier_sql.append(
            f"""t{index} AS MATERIALIZED (
                SELECT c.id FROM knowledge_chunk_fts
                  JOIN knowledge_chunk c ON c.id = knowledge_chunk_fts.rowid
                  JOIN knowledge_document d ON d.id = c.document_id
                 WHERE knowledge_chunk_fts MATCH %s AND d.knowledge_base_id IN ({placeholders})
                   AND {filters}{needed}
                 LIMIT {int(cap)})"""
        )
        tier_params += [expression, *knowledge_base_ids, *params] + ([limit] if index else [])
    union = " UNION ".join(f"SELECT id FROM t{i}" for i in range(len(expressions)))
    cursor.execute(
        f"""
        WITH {", ".join(tier_sql)}, candidates AS ({union})
        SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path, d.title,
               d.knowledge_base_id, bm25(knowledge_chunk_fts, 2.0, 1.0) AS rank
          FROM knowledge_chunk_fts
          JOIN knowledge_chunk c ON c.id = knowledge_chunk_fts.rowid
          JOIN knowledge_document d ON d.id = c.document_id
         WHERE knowledge_chunk_fts MATCH %s
           AND knowledge_chunk_fts.rowid IN (SELECT id FROM candidates)
         ORDER BY rank, c.id
         LIMIT %s
        """,
        [*tier_params, expressions[-1], limit],
    )
    rows = cursor.fetchall()
    return [(*row[:8], (-row[8]) / (-row[8] + BM25_SCALE) if row[8] < 0 else 0.0) for row in rows]
