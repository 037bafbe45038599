"""One rule for duplicates: a row that clashes with a unique constraint is a conflict, named by field.

Two places find a duplicate, and both name the same field(s) with the same message:

- validation before the write (``prisma_glow.models.DomainModel.full_clean`` and its
  ``validate_unique``/``validate_constraints``) raises ``ConflictError`` keyed by field;
- the database, when two writes race past validation (two concurrent creates): the API's exception
  handler asks :func:`unique_violation` which constraint an ``IntegrityError`` broke.

The field(s) named are :func:`conflict_fields`: the constraint's fields without the organisation
(every name is unique *within* an organisation), without the leading parent of a composite key
(``(agent, tool)`` names ``tool``), and the condition's field when the constraint is only a flag
(``(organization) WHERE is_default`` names ``is_default``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from django.apps import apps
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist
from django.db import IntegrityError, models
from django.db.models import F, UniqueConstraint
from django.utils.text import capfirst, get_text_list

SCOPE_FIELD = "organization"


def _is_relation(model: type[models.Model], name: str) -> bool:
    try:
        return model._meta.get_field(name).is_relation
    except FieldDoesNotExist:
        return False


def _expression_fields(expressions) -> list[str]:
    names: list[str] = []
    for expression in expressions:
        for node in [expression] if isinstance(expression, F) else expression.flatten():
            if isinstance(node, F) and node.name not in names:
                names.append(node.name)
    return names


def _condition_fields(condition) -> list[str]:
    names: list[str] = []
    for child in condition.children:
        if isinstance(child, tuple):
            names.append(child[0].split("__")[0])
        else:
            names.extend(_condition_fields(child))
    return names


def conflict_fields(model: type[models.Model], constraint: UniqueConstraint) -> list[str]:
    """The field(s) a caller changes to resolve a clash with ``constraint`` (see the module's doc)."""
    names = list(constraint.fields) or _expression_fields(constraint.expressions)
    names = [n for n in names if n != SCOPE_FIELD]
    if len(names) > 1 and _is_relation(model, names[0]):
        names = names[1:]
    if constraint.condition is not None and all(_is_relation(model, n) for n in names):
        flags = [
            n
            for n in _condition_fields(constraint.condition)
            if n != SCOPE_FIELD and not _is_relation(model, n)
        ]
        names = flags or names
    return names or [NON_FIELD_ERRORS]


def conflict_message(model: type[models.Model], constraint: UniqueConstraint, fields: list[str]) -> str:
    """The constraint's own message, or Django's "<Model> with this <field> already exists."."""
    if constraint.violation_error_message != constraint.default_violation_error_message:
        return str(constraint.get_violation_error_message())
    labels = [
        str(model._meta.get_field(f).verbose_name) if f != NON_FIELD_ERRORS else "value" for f in fields
    ]
    return f"{capfirst(model._meta.verbose_name)} with this {get_text_list(labels, 'and')} already exists."


@dataclass(frozen=True)
class UniqueViolation:
    """A unique constraint (or unique field) that a write broke: what to tell the caller."""

    model: type[models.Model]
    fields: tuple[str, ...]
    message: str

    def errors(self) -> dict[str, list[str]]:
        return {field: [self.message] for field in self.fields}


@cache
def _registry() -> tuple[dict[str, UniqueViolation], dict[tuple[str, frozenset[str]], UniqueViolation]]:
    """Every unique constraint and unique field of every installed model, by constraint name and by
    (table, columns): what PostgreSQL and SQLite report when one is broken."""
    by_name: dict[str, UniqueViolation] = {}
    by_columns: dict[tuple[str, frozenset[str]], UniqueViolation] = {}
    for model in apps.get_models():
        table = model._meta.db_table
        for constraint in model._meta.constraints:
            if not isinstance(constraint, UniqueConstraint):
                continue
            fields = conflict_fields(model, constraint)
            violation = UniqueViolation(model, tuple(fields), conflict_message(model, constraint, fields))
            by_name[constraint.name] = violation
            if constraint.fields:
                columns = frozenset(model._meta.get_field(f).column for f in constraint.fields)
                by_columns.setdefault((table, columns), violation)
        for field in model._meta.local_fields:
            if field.unique and not field.primary_key:
                message = field.error_messages["unique"] % {
                    "model_name": capfirst(model._meta.verbose_name),
                    "field_label": field.verbose_name,
                }
                violation = UniqueViolation(model, (field.name,), message)
                by_columns[(table, frozenset([field.column]))] = violation
    return by_name, by_columns


_SQLITE_COLUMNS = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w.]+(?:, [\w.]+)*)$")
_SQLITE_INDEX = re.compile(r"UNIQUE constraint failed: index '(?P<name>\w+)'")
_POSTGRES_KEY = re.compile(r"^Key \((?P<columns>[\w, ]+)\)=")


def unique_violation(exc: BaseException) -> UniqueViolation | None:
    """Which unique constraint an ``IntegrityError`` broke, or None (another integrity error, or a
    constraint of no installed model)."""
    if not isinstance(exc, IntegrityError):
        return None
    by_name, by_columns = _registry()
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23505":  # PostgreSQL (psycopg): unique_violation
        diag = cause.diag
        if diag.constraint_name in by_name:
            return by_name[diag.constraint_name]
        match = _POSTGRES_KEY.match(diag.message_detail or "")
        if match and diag.table_name:
            columns = frozenset(c.strip() for c in match["columns"].split(","))
            return by_columns.get((diag.table_name, columns))
        return None
    text = str(exc)
    if match := _SQLITE_INDEX.search(text):
        return by_name.get(match["name"])
    if match := _SQLITE_COLUMNS.search(text):
        pairs = [column.rsplit(".", 1) for column in match["columns"].split(", ")]
        tables = {pair[0] for pair in pairs if len(pair) == 2}
        if len(tables) == 1:
            return by_columns.get((tables.pop(), frozenset(pair[1] for pair in pairs)))
    return None
