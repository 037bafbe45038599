"""SQLite full-text search: an external-content FTS5 table with Porter stemming, ranked by bm25.

``knowledge_chunk_fts`` indexes ``heading_path`` and ``text`` of ``knowledge_chunk`` (rowid = chunk
id); triggers keep it in sync on insert, update and delete, whoever writes the rows. bm25 scores
(negative, lower is better) are mapped to [0, 1) so that a minimum score means roughly the same on
both databases.
"""

from __future__ import annotations

from knowledge.search.query import ParsedQuery

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


def candidates(
    cursor,
    *,
    query: ParsedQuery,
    config: str,
    knowledge_base_ids: list[int],
    filters: str,
    params: list,
    limit: int,
) -> list[tuple]:
    """Rows (chunk id, document id, ordinal, text, page, heading path, title, kb id, score in [0, 1))."""
    expression = query.fts5()
    if not expression:
        return []
    placeholders = ", ".join(["%s"] * len(knowledge_base_ids))
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path, d.title,
               d.knowledge_base_id, bm25(knowledge_chunk_fts, 2.0, 1.0) AS rank
          FROM knowledge_chunk_fts
          JOIN knowledge_chunk c ON c.id = knowledge_chunk_fts.rowid
          JOIN knowledge_document d ON d.id = c.document_id
         WHERE knowledge_chunk_fts MATCH %s
           AND d.knowledge_base_id IN ({placeholders})
           AND {filters}
         ORDER BY rank, c.id
         LIMIT %s
        """,
        [expression, *knowledge_base_ids, *params, limit],
    )
    rows = cursor.fetchall()
    return [(*row[:8], (-row[8]) / (-row[8] + BM25_SCALE) if row[8] < 0 else 0.0) for row in rows]
