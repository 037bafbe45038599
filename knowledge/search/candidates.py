"""What a search considers, written once for both engines: the document filter and the candidate tiers
as SQL.

``postgres.SEARCH_FUNCTION_SQL`` (the ``knowledge_search`` function) and ``sqlite.candidates`` build
their SQL from these functions, each passing its own spelling of the parameters (PL/pgSQL variables,
or ``%(name)s`` placeholders) and of list membership; the tiers themselves (which combinations of the
query's units each tier matches) are ``query.tiers``, which both engines call.
"""

from __future__ import annotations

from collections.abc import Callable

from knowledge.models import DocumentStatus

#: Documents whose index is committed: ready, or processing while being re-indexed (their previous
#: chunks stay searchable until the new ones replace them in one transaction).
SEARCHABLE_STATUSES = (DocumentStatus.READY, DocumentStatus.PROCESSING)


def document_filter(*, as_of: str, jurisdictions: str, is_one_of: Callable[[str, str], str]) -> str:
    """SQL for the documents (``d``, a ``knowledge_document`` row) a search considers: a searchable
    status; in force on ``as_of`` (``effective_from`` not after it, ``effective_to`` not before it, an
    open end in force); of one of ``jurisdictions`` or blank (applies everywhere).

    ``as_of`` and ``jurisdictions`` are SQL expressions of the engine's parameters; NULL means no such
    filter. ``is_one_of(column, list_expression)`` is the engine's membership test.
    """
    statuses = ", ".join(f"'{status.value}'" for status in SEARCHABLE_STATUSES)
    return (
        f"d.status IN ({statuses})\n"
        f"   AND ({as_of} IS NULL OR ((d.effective_from IS NULL OR d.effective_from <= {as_of})\n"
        f"                           AND (d.effective_to IS NULL OR d.effective_to >= {as_of})))\n"
        f"   AND ({jurisdictions} IS NULL OR d.jurisdiction = ''"
        f" OR {is_one_of('d.jurisdiction', jurisdictions)})"
    )


def tier_ctes(
    count: int,
    *,
    select: str,
    conditions: Callable[[int], list[str]],
    cap: Callable[[int], str],
    limit: str,
) -> list[str]:
    """The common table expressions ``t0`` … ``t{count - 1}``, one per candidate tier (strictest first):
    ``select`` (columns and joins, with ``d`` the document) where all ``conditions(k)`` hold, at most
    ``cap(k)`` rows; a looser tier is read only while the stricter ones found fewer than ``limit``
    candidates. Each is MATERIALIZED so that counting it does not run it again.
    """
    ctes = []
    for k in range(count):
        where = list(conditions(k))
        if k:
            stricter = " + ".join(f"(SELECT count(*) FROM t{i})" for i in range(k))
            where.append(f"{stricter} < {limit}")
        body = "\n           AND ".join(where)
        ctes.append(
            f"t{k} AS MATERIALIZED (\n        {select}\n         WHERE {body}\n         LIMIT {cap(k)}\n    )"
        )
    return ctes
