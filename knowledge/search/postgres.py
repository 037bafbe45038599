"""PostgreSQL full-text search: a stored, trigger-maintained ``tsvector`` with a GIN index.

The vector is built in the text-search configuration of the chunk's knowledge base
(``KnowledgeBase.search_config``): heading path weighted A, text weighted B. Queries use
the same configuration (``websearch_to_tsquery`` per word and quoted phrase, combined into
capped candidate tiers, see ``knowledge.search.query.tiers``) and rank with ``ts_rank`` normalised to
[0, 1).
"""

from __future__ import annotations

import datetime

from knowledge.search.candidates import document_filter, tier_ctes
from knowledge.search.query import ParsedQuery, tier_caps, tiers

# The live definition of ``knowledge_search``, generated from the rules written once in
# ``knowledge.search.candidates`` (the document filter, the capped tiers) and ``query.tiers`` (which
# units each tier combines: Python sends the combinations as ``plan``, so PL/pgSQL only evaluates
# them). Migrations carry their SQL literally (0012 is the latest to install it);
# ``tests/platform/test_migrations.py`` keeps this equal to it, so a change here comes with a new
# migration. Each tier row carries its rank (computed while the row is at hand) and its document's
# title and knowledge base (the document is joined for the filters anyway), so the union is ranked
# without reading every candidate a second time: only the ``lim`` best are read again, for their text
# (about 0.3 ms of a search at 100,000 chunks). Tiers written out in one function rather than a
# function called per tier: a nested call cost about 0.1 ms each.
TIER_COUNT = 5  # at most, see query.tier_kinds

_TIER_CTES = tier_ctes(
    TIER_COUNT,
    select=(
        "SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank\n"
        "          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id"
    ),
    conditions=lambda k: [
        f"caps[{k + 1}] > 0",
        f"c.search_vector @@ tq[{k + 1}]",
        "d.knowledge_base_id = ANY(kb_ids)",
        document_filter(
            as_of="as_of",
            jurisdictions="jurisdictions",
            is_one_of=lambda column, values: f"{column} = ANY({values})",
        ).replace("\n", "\n        "),
        "(q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)",
    ],
    cap=lambda k: f"caps[{k + 1}]",
    limit="lim",
)
SEARCH_FUNCTION_SQL = (
    """
CREATE OR REPLACE FUNCTION knowledge_search(
    cfg regconfig, units text[], excluded text, kb_ids bigint[], as_of date, jurisdictions text[],
    lim integer, plan integer[], caps integer[]
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
    k integer;
    part tsquery;
    tier tsquery;
    tq tsquery[] := '{}';
    q_any tsquery;
    q_excluded tsquery;
BEGIN
    q := ARRAY(SELECT websearch_to_tsquery(cfg, u.w) FROM unnest(units) WITH ORDINALITY AS u(w, i) ORDER BY u.i);
    n := coalesce(array_length(q, 1), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    q_any := q[1];  -- what every candidate is ranked against
    FOR i IN 2..n LOOP
        q_any := q_any || q[i];
    END LOOP;
    -- The tiers: plan lists, per tier, groups of unit numbers ended by 0 (a group's units AND-ed,
    -- the groups OR-ed), each tier ended by -1.
    FOREACH k IN ARRAY plan LOOP
        IF k > 0 THEN
            part := CASE WHEN part IS NULL THEN q[k] ELSE part && q[k] END;
        ELSIF k = 0 THEN
            tier := CASE WHEN tier IS NULL THEN part ELSE tier || part END;
            part := NULL;
        ELSE
            tq := array_append(tq, tier);
            tier := NULL;
        END IF;
    END LOOP;
    IF excluded IS NOT NULL THEN
        q_excluded := websearch_to_tsquery(cfg, excluded);
    END IF;
    RETURN QUERY
    WITH """
    + ",\n    ".join(_TIER_CTES)
    + """, ranked AS MATERIALIZED (
        SELECT candidates.* FROM ("""
    + " UNION ".join(f"SELECT * FROM t{k}" for k in range(TIER_COUNT))
    + """) AS candidates
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


def tier_plan(unit_count: int) -> tuple[list[str], list[int]]:
    """The tiers of a query of ``unit_count`` units as ``knowledge_search`` reads them: their kinds, and
    ``plan`` (per tier, groups of 1-based unit numbers each ended by 0, the tier ended by -1)."""
    plan: list[int] = []
    kinds = []
    for kind, expression in tiers(
        list(range(1, unit_count + 1)),
        conjunction=tuple,
        disjunction=lambda parts: [part if isinstance(part, tuple) else (part,) for part in parts],
    ):
        kinds.append(kind)
        for group in [expression] if isinstance(expression, tuple) else expression:
            plan += [*group, 0]
        plan.append(-1)
    return kinds, plan


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
    kinds, plan = tier_plan(len(units))
    excluded = " or ".join(w for w in query.excluded if w != "or") or None
    cursor.execute(
        "SELECT * FROM knowledge_search(%s::regconfig, %s::text[], %s::text, %s::bigint[], %s::date, "
        "%s::text[], %s, %s::integer[], %s::integer[])",
        [config, units, excluded, list(knowledge_base_ids), as_of, jurisdictions, limit, plan,
         tier_caps(kinds)],
    )  # fmt: skip
    return cursor.fetchall()
