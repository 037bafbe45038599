"""PostgreSQL: ``knowledge_search`` takes the candidate tiers from Python (``plan``: which units each tier
combines, from ``knowledge.search.query.tiers``) instead of building them again in PL/pgSQL, and its
document filter and tiers are generated from ``knowledge.search.candidates``, where both engines'
SQL comes from: each rule is written once. The same rows for every query; the signature changes
(``plan integer[], caps integer[]`` replace ``caps integer[], max_pair_units integer``), so the old
function is dropped. Migrating back restores 0009's function. Nothing on SQLite."""

from django.db import migrations

# The SQL exactly as this migration runs it (history is frozen: a later change to the live SQL is a
# new migration, never an edit here). ``tests/platform/test_migrations.py`` keeps the live SQL
# (``knowledge.search.postgres.SEARCH_FUNCTION_SQL``) equal to SEARCH_FUNCTION_SQL here.
SEARCH_FUNCTION_SQL = r"""
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
    WITH t0 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[1] > 0
           AND c.search_vector @@ tq[1]
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                   AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[1]
    ),
    t1 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[2] > 0
           AND c.search_vector @@ tq[2]
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                   AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
           AND (SELECT count(*) FROM t0) < lim
         LIMIT caps[2]
    ),
    t2 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[3] > 0
           AND c.search_vector @@ tq[3]
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                   AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
           AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) < lim
         LIMIT caps[3]
    ),
    t3 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[4] > 0
           AND c.search_vector @@ tq[4]
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                   AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
           AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2) < lim
         LIMIT caps[4]
    ),
    t4 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[5] > 0
           AND c.search_vector @@ tq[5]
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                   AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
           AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2) + (SELECT count(*) FROM t3) < lim
         LIMIT caps[5]
    ), ranked AS MATERIALIZED (
        SELECT candidates.* FROM (SELECT * FROM t0 UNION SELECT * FROM t1 UNION SELECT * FROM t2 UNION SELECT * FROM t3 UNION SELECT * FROM t4) AS candidates
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
DROP_SEARCH_FUNCTION_SQL = (
    "DROP FUNCTION IF EXISTS knowledge_search(regconfig, text[], text, bigint[], date, text[], integer, "
    "integer[], integer[])"
)

# The function as migration 0009 installed it, restored when migrating back.
PREVIOUS_SEARCH_FUNCTION_SQL = r"""
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
    WITH t0 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[1] > 0
           AND c.search_vector @@ q_all
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[1]
    ),
    t1 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[2] > 0 AND (SELECT count(*) FROM t0) < lim
           AND c.search_vector @@ q_but_one
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[2]
    ),
    t2 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[3] > 0 AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) < lim
           AND c.search_vector @@ q_but_two
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[3]
    ),
    t3 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[4] > 0 AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2) < lim
           AND c.search_vector @@ q_pairs
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[4]
    ),
    t4 AS MATERIALIZED (
        SELECT c.id, c.document_id, d.title, d.knowledge_base_id, ts_rank(c.search_vector, q_any, 32) AS rank
          FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
         WHERE caps[5] > 0 AND (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2) + (SELECT count(*) FROM t3) < lim
           AND c.search_vector @@ q_any
           AND d.knowledge_base_id = ANY(kb_ids)
           AND d.status IN ('ready', 'processing')
           AND (as_of IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= as_of)
                                  AND (d.effective_to IS NULL OR d.effective_to >= as_of)))
           AND (jurisdictions IS NULL OR d.jurisdiction = '' OR d.jurisdiction = ANY(jurisdictions))
           AND (q_excluded IS NULL OR NOT c.search_vector @@ q_excluded)
         LIMIT caps[5]
    ), ranked AS MATERIALIZED (
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
DROP_PREVIOUS_SEARCH_FUNCTION_SQL = (
    "DROP FUNCTION IF EXISTS knowledge_search(regconfig, text[], text, bigint[], date, text[], integer, "
    "integer[], integer)"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_PREVIOUS_SEARCH_FUNCTION_SQL)
        schema_editor.execute(SEARCH_FUNCTION_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SEARCH_FUNCTION_SQL)
        schema_editor.execute(PREVIOUS_SEARCH_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0011_drop_search_tier_function")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
