"""PostgreSQL full-text search: a stored, trigger-maintained ``tsvector`` with a GIN index.

The vector is built in the text-search configuration of the chunk's knowledge base
(``KnowledgeBase.search_config``): heading path weighted A, text weighted B. Queries use
the same configuration (``websearch_to_tsquery`` per word and quoted phrase, combined into
capped candidate tiers, see ``knowledge.search.query.tiers``) and rank with ``ts_rank`` normalised to
[0, 1).
"""

from __future__ import annotations

import datetime

from knowledge.search.query import ParsedQuery, tier_caps, tiers

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

# One capped tier of candidates (see ``query.tiers``). A function, so that it can run with sequential
# scans disabled: with a LIMIT and a common word the planner otherwise prefers reading the table
# and testing every row's vector, which is many times slower than the GIN index. PL/pgSQL, so that
# its plan is cached for the session (a SQL function would be planned again on every call).
TIER_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION knowledge_search_tier(
    q tsquery, kb_ids bigint[], as_of date, jurisdictions text[], excluded tsquery, cap integer
) RETURNS TABLE (id bigint)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $$
BEGIN
    RETURN QUERY
    SELECT c.id
      FROM knowledge_chunk c
      JOIN knowledge_document d ON d.id = c.document_id
     WHERE c.search_vector @@ q
       AND d.knowledge_base_id = ANY(kb_ids)
       AND d.status IN ('ready', 'processing')
       AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                              AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
       AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
       AND (excluded IS NULL OR NOT c.search_vector @@ excluded)
     LIMIT cap;
END
$$
"""
DROP_TIER_FUNCTION_SQL = (
    "DROP FUNCTION IF EXISTS knowledge_search_tier(tsquery, bigint[], date, text[], tsquery, integer)"
)

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


def install_tier_function(schema_editor) -> None:
    schema_editor.execute(TIER_FUNCTION_SQL)


def uninstall_tier_function(schema_editor) -> None:
    schema_editor.execute(DROP_TIER_FUNCTION_SQL)


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
    as_of: datetime.date | None,
    jurisdictions: list[str] | None,
    limit: int,
) -> list[tuple]:
    """Rows (chunk id, document id, ordinal, text, page, heading path, title, kb id, score in [0, 1)).

    One query. Each word and quoted phrase of the query becomes ``websearch_to_tsquery(config, unit)``
    (element ``u.q[i]``); the candidate tiers (all units, any two, any one) combine them with the
    tsquery operators ``&&`` and ``||``; the union of the capped tiers is ranked with ``ts_rank``
    against the units OR-ed.
    """
    # Units hold only word characters and spaces (see ParsedQuery), so quoting a phrase is safe.
    units = ['"' + " ".join(p) + '"' for p in query.phrases] + list(query.content_terms)
    units = list(dict.fromkeys(units))
    if not units:
        return []
    refs = [f"u.q[{i}]" for i in range(1, len(units) + 1)]
    expressions = tiers(
        refs,
        conjunction=lambda parts: "(" + " && ".join(parts) + ")",
        disjunction=lambda parts: "(" + " || ".join(parts) + ")",
    )
    # A looser tier runs only when the stricter ones found fewer than ``limit`` candidates: passages
    # with more of the query's words are the ones the ranking puts first anyway.
    tier_sql, tier_params = [], []
    for index, (expression, cap) in enumerate(zip(expressions, tier_caps(len(expressions)), strict=True)):
        sql = (
            f"t{index} AS MATERIALIZED (SELECT t.id FROM u, knowledge_search_tier({expression}, %s::bigint[], "
            f"%s::date, %s::text[], u.excluded, {int(cap)}) AS t"
        )
        tier_params += [list(knowledge_base_ids), as_of, jurisdictions]
        if index:
            sql += " WHERE " + " + ".join(f"(SELECT count(*) FROM t{i})" for i in range(index)) + " < %s"
            tier_params.append(limit)
        tier_sql.append(sql + ")")
    excluded = " or ".join(w for w in query.excluded if w != "or") or None
    cursor.execute(
        f"""
        WITH u AS MATERIALIZED (
            SELECT ARRAY(SELECT websearch_to_tsquery(%s::regconfig, w)
                           FROM unnest(%s::text[]) WITH ORDINALITY AS x(w, n) ORDER BY n) AS q,
                   CASE WHEN %s::text IS NULL THEN NULL::tsquery
                        ELSE websearch_to_tsquery(%s::regconfig, %s::text) END AS excluded
        ),
        {", ".join(tier_sql)},
        candidates AS ({" UNION ".join(f"SELECT id FROM t{i}" for i in range(len(tier_sql)))}),
        ranked AS MATERIALIZED (
            SELECT c.id, c.document_id, ts_rank(c.search_vector, {expressions[-1]}, 32) AS rank
              FROM candidates
              JOIN knowledge_chunk c ON c.id = candidates.id
             CROSS JOIN u
             ORDER BY rank DESC, c.id
             LIMIT %s
        )
        SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path, d.title,
               d.knowledge_base_id, ranked.rank
          FROM ranked
          JOIN knowledge_chunk c ON c.id = ranked.id
          JOIN knowledge_document d ON d.id = ranked.document_id
         ORDER BY ranked.rank DESC, c.id
        """,
        [config, units, excluded, config, excluded, *tier_params, limit],
    )
    return cursor.fetchall()
