"""PostgreSQL full-text search: a stored, trigger-maintained ``tsvector`` with a GIN index.

The vector is built in the text-search configuration of the chunk's knowledge base
(``KnowledgeBase.search_config``): heading path weighted A, text weighted B. Queries use
the same configuration (``websearch_to_tsquery`` per word and quoted phrase, combined into
capped candidate tiers, see ``knowledge.search.query.tiers``) and rank with ``ts_rank`` normalised to
[0, 1).
"""

from __future__ import annotations

import datetime

from knowledge.search.query import MAX_PAIR_TERMS, TIER_KINDS, ParsedQuery, tier_caps, tier_kinds

# The live definition of ``knowledge_search``. Migrations carry their SQL literally (0009 is the latest
# to install it); ``tests/platform/test_migrations.py`` keeps this equal to it, so a change here comes
# with a new migration. The tiers are written out in the function rather than calling the former
# ``knowledge_search_tier`` five times: a nested function call cost about 0.1 ms each. Each tier row carries its rank (computed while the row is at
# hand) and its document's title and knowledge base (the document is joined for the filters anyway), so
# the union is ranked without reading every candidate a second time: only the ``lim`` best are read
# again, for their text (migration 0009; about 0.3 ms of a search at 100,000 chunks).
_TIER_QUERIES = ("q_all", "q_but_one", "q_but_two", "q_pairs", "q_any")


def _tier_cte(k: int, query: str) -> str:
    stricter = " + ".join(f"(SELECT count(*) FROM t{i})" for i in range(k))
    return f"""t{k} AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[{k + 1}] > 0{f" AND {stricter} < lim" if k else ""}
           AND c.search_vector @@ {query}
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[{k + 1}]
    )"""


_TIER_CTES = ",\n    ".join(_tier_cte(k, query) for k, query in enumerate(_TIER_QUERIES))
SEARCH_FUNCTION_SQL = (
    """
CREATE OR REPLACE FUNCTION knowledge_search(
    cfg regconfig, units text[], excluded text, kb_ids bigint[], as_of date, jurisdictions text[],
    lim integer, caps integer[], max_pair_units integer
) RETURNS TABLE (
    id bigint, document_id bigint, ordinal integer, text text, page integer, heading_path text,
    title text, knowledge_base_id bigint, rank real, screening text
)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    q tsquery[];
    n integer;
    m integer;
    part tsquery;
    q_all tsquery;
    q_but_one tsquery;
    q_but_two tsquery;
    q_pairs tsquery;
    q_any tsquery;
    q_excluded tsquery;
BEGIN
    q := ARRAY(SELECT websearch_to_tsquery(cfg, u.w) FROM unnest(units) WITH ORDINALITY AS u(w, i) ORDER BY u.i);
    n := coalesce(array_length(q, 1), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    q_all := q[1];
    q_any := q[1];
    FOR i IN 2..n LOOP
        q_all := q_all && q[i];
        q_any := q_any || q[i];
    END LOOP;
    m := least(n, max_pair_units);
    IF caps[2] > 0 THEN  -- all but one
        FOR a IN 1..m LOOP
            part := NULL;
            FOR i IN 1..m LOOP
                CONTINUE WHEN i = a;
                part := CASE WHEN part IS NULL THEN q[i] ELSE part && q[i] END;
            END LOOP;
            q_but_one := CASE WHEN q_but_one IS NULL THEN part ELSE q_but_one || part END;
        END LOOP;
    END IF;
    IF caps[3] > 0 THEN  -- all but two
        FOR a IN 1..m - 1 LOOP
            FOR b IN a + 1..m LOOP
                part := NULL;
                FOR i IN 1..m LOOP
                    CONTINUE WHEN i = a OR i = b;
                    part := CASE WHEN part IS NULL THEN q[i] ELSE part && q[i] END;
                END LOOP;
                q_but_two := CASE WHEN q_but_two IS NULL THEN part ELSE q_but_two || part END;
            END LOOP;
        END LOOP;
    END IF;
    IF caps[4] > 0 THEN  -- any two
        FOR a IN 1..m - 1 LOOP
            FOR b IN a + 1..m LOOP
                q_pairs := CASE WHEN q_pairs IS NULL THEN q[a] && q[b] ELSE q_pairs || (q[a] && q[b]) END;
            END LOOP;
        END LOOP;
    END IF;
    IF excluded IS NOT NULL THEN
        q_excluded := websearch_to_tsquery(cfg, excluded);
    END IF;
    RETURN QUERY
    WITH """
    + _TIER_CTES
    + """, ranked AS MATERIALIZED (
        SELECT candidates.* FROM (SELECT * FROM t0 UNION SELECT * FROM t1 UNION SELECT * FROM t2
                                  UNION SELECT * FROM t3 UNION SELECT * FROM t4) AS candidates
         ORDER BY candidates.rank DESC, candidates.id
         LIMIT lim
    )
    SELECT c.id, c.document_id, c.ordinal, c.text, c.page, c.heading_path::text, ranked.title::text,
           ranked.knowledge_base_id, ranked.rank, c.screening::text
      FROM ranked
      JOIN knowledge_chunk c ON c.id = ranked.id
     ORDER BY ranked.rank DESC, c.id;
END
$$
"""
)


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
    """Rows (chunk id, document id, ordinal, text, page, heading path, title, kb id, score in [0, 1),
    screening as JSON text or None).

    One query, ``knowledge_search`` (see ``SEARCH_FUNCTION_SQL``): each word and quoted phrase of the
    query becomes ``websearch_to_tsquery(config, unit)``; the candidate tiers (all units, all but one
    or two, any two, any one; ``query.tiers``) combine them with the tsquery operators ``&&`` and
    ``||``; the union of the capped tiers is ranked with ``ts_rank`` against the units OR-ed.
    """
    # Units hold only word characters and spaces (see ParsedQuery), so quoting a phrase is safe.
    units = ['"' + " ".join(p) + '"' for p in query.phrases] + list(query.content_terms)
    units = list(dict.fromkeys(units))
    if not units:
        return []
    kinds = tier_kinds(len(units))
    caps = dict(zip(kinds, tier_caps(kinds), strict=True))
    excluded = " or ".join(w for w in query.excluded if w != "or") or None
    cursor.execute(
        "SELECT * FROM knowledge_search(%s::regconfig, %s::text[], %s::text, %s::bigint[], %s::date, "
        "%s::text[], %s, %s::integer[], %s)",
        [config, units, excluded, list(knowledge_base_ids), as_of, jurisdictions, limit,
         [caps.get(kind, 0) for kind in TIER_KINDS], MAX_PAIR_TERMS],
    )  # fmt: skip
    return cursor.fetchall()
