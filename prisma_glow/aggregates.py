"""Aggregates the database computes that Django does not ship.

``Percentile(expression, fraction)`` is the continuous percentile (linear interpolation between the
two nearest ranks), the same figure on both databases the project runs on: PostgreSQL's ordered-set
aggregate ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``, and on SQLite an
aggregate function of the same definition that every new SQLite connection registers
(``pg_percentile_cont``, below). It groups like any aggregate: one query gives the p95 of every
day, agent or model.
"""

from __future__ import annotations

import math

from django.db import NotSupportedError
from django.db.backends.signals import connection_created
from django.db.models import Aggregate, FloatField

SQLITE_FUNCTION = "pg_percentile_cont"


class Percentile(Aggregate):
    """The ``fraction`` (0–1) continuous percentile of ``expression``; NULLs are ignored, no rows give
    NULL."""

    name = "Percentile"
    output_field = FloatField()
    allow_distinct = False

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile's fraction is between 0 and 1.")
        self.fraction = fraction
        super().__init__(expression, **extra)

    def _compiled(self, compiler):
        return compiler.compile(self.get_source_expressions()[0])

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = self._compiled(compiler)
        return f"percentile_cont(%s) WITHIN GROUP (ORDER BY {sql})", (self.fraction, *params)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = self._compiled(compiler)
        return f"{SQLITE_FUNCTION}({sql}, %s)", (*params, self.fraction)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"Percentile is not available on {connection.vendor}.")


class PercentileCont:
    """SQLite's ``pg_percentile_cont(value, fraction)``: PostgreSQL's ``percentile_cont``."""

    def __init__(self):
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction):
        if value is not None:
            self.values.append(float(value))
            self.fraction = float(fraction)

    def finalize(self):
        return percentile_cont(self.values, self.fraction)


def percentile_cont(values, fraction: float) -> float | None:
    """``fraction``'s continuous percentile of ``values`` (None for none), as PostgreSQL defines it."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_FUNCTION, 2, PercentileCont)


connection_created.connect(register_sqlite_functions, dispatch_uid="prisma_glow.aggregates.sqlite")
