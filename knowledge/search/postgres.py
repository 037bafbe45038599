"""PostgreSQL full-text search: a stored, trigger-maintained ``tsvector`` with a GIN index.

The vector is built in the text-search configuration of the chunk's knowledge base
(``KnowledgeBase.search_config``): heading path weighted A, text weighted B. Queries use
``websearch_to_tsquery`` in the same configuration and rank with ``ts_rank_cd`` normalised to [0, 1).
"""

from __future__ import annotations

from knowledge.search.query import ParsedQuery

INSTALL_SQL = [
    "ALTER TABLE knowledge_chunk ADD COLUMN search_vector tsvector",
    """
    CREATE FUNCTION knowledge_chunk_search_vector() RETURNS trigger AS $$
    DECLARE
        cfg regconfig;
    BEGIN
        SELECT kb.search_config::regconfig INTO cfg
          FROM knowledge_document d
          JOIN knowledge_knowledgebase kb ON kb.id = d.knowledge_base_id
         WHERE d.id = NEW.document_id;
        cfg := coalesce(cfg, 'simple'::regconfig);
        NEW.search_vector :=
            setweight(to_tsvector(cfg, coalesce(NEW.heading_path, '')), 'A')
            || setweight(to_tsvector(cfg, coalesce(NEW.text, '')), 'B');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER knowledge_chunk_search_vector_trg
    BEFORE INSERT OR UPDATE OF text, heading_path, document_id ON knowledge_chunk
    FOR EACH ROW EXECUTE FUNCTION knowledge_chunk_search_vector()
    """,
    # Fill the vector of rows that existed before this migration.
    "UPDATE knowledge_chunk SET heading_path = heading_path",
    "CREATE INDEX knowledge_chunk_search_gin ON knowledge_chunk USING gin (search_vector)",
]

UNINSTALL_SQL = [
    "DROP INDEX IF EXISTS knowledge_chunk_search_gin",
    "DROP TRIGGER IF EXISTS knowledge_chunk_search_vector_trg ON knowledge_chunk",
    "DROP FUNCTION IF EXISTS knowledge_chunk_search_vector()",
    "ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS search_vector",
]


def install(schema_editor) -> None:
    for statement in INSTALL_SQL:
        schema_editor.execute(statement)


def uninstall(schema_editor) -> None:
    for statement in UNINSTALL_SQL:
        schema_editor.execute(statement)


def refresh_vectors(cursor, knowledge_base_id: int) -> None:
    """Rebuild the vectors of one knowledge base (after its search configuration changed)."""
    cursor.execute(
        "UPDATE knowledge_chunk SET heading_path = heading_path WHERE document_id IN "
        "(SELECT id FROM knowledge_document WHERE knowledge_base_id = %s)",
        [knowledge_base_id],
    )


def config_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_catalog.pg_ts_config WHERE cfgname = %s", [name])
    return cursor.fetchone() is not None


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
    websearch = query.websearch()
    if not websearch:
        return []
    exclude = ""
    exclude_params: list = []
    if query.excluded:
        exclude = " AND NOT c.search_vector @@ websearch_to_tsquery(%s::regconfig, %s)"
        exclude_params = [config, query.websearch_excluded()]
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path, d.title,
               d.knowledge_base_id, ts_rank_cd(c.search_vector, q.tsq, 32) AS rank
          FROM knowledge_chunk c
          JOIN knowledge_document d ON d.id = c.document_id
         CROSS JOIN (SELECT websearch_to_tsquery(%s::regconfig, %s) AS tsq) q
         WHERE c.search_vector @@ q.tsq
           AND d.knowledge_base_id = ANY(%s)
           AND {filters}{exclude}
         ORDER BY rank DESC, c.id
         LIMIT %s
        """,
        [config, websearch, list(knowledge_base_ids), *params, *exclude_params, limit],
    )
    return cursor.fetchall()
