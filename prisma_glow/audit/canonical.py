"""The audit hash's canonical JSON, and the check that keeps out of every JSON column what JSON cannot
carry.

Hash version 1 hashed ``json.dumps`` of the event, numbers as Python writes them. PostgreSQL's jsonb
does not give numbers back as they were written: ``1.5e300`` comes back as its 301 digits (read as an
``int``), ``1e16`` as ``10000000000000000``, ``-0.0`` as ``0.0``, so the re-read event hashed otherwise
and ``audit_verify_chain`` flagged it. Version 2 writes every number by its value, in the one form both
databases give back the same: integers exact, whatever their length; any other number as its shortest
exact decimal in fixed notation — the digits of Python's ``repr`` for a float (the shortest text that
reads back as the same float), no exponent, no trailing zeros, no ``.0`` (``1.0`` is ``1``, ``1.5e300``
is 15 and 299 zeros, ``1e-7`` is ``0.0000001``, ``-0.0`` is ``0``). An ``int``, a ``float`` and a
``Decimal`` of the same value write the same. Everything else is written as ``json.dumps`` writes it
(sorted keys, no spaces, ASCII with ``\\u`` escapes).
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from json.encoder import encode_basestring_ascii

from django.core.exceptions import ValidationError

#: The longest integer Python converts to and from text (its ``int_max_str_digits``, 4,300 by
#: default): a longer one could be stored but not read back (``json.loads`` refuses it).
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
_INT_LIMIT = 10**MAX_INT_DIGITS


def canonical_number(value: int | float | Decimal) -> str:
    """``value`` as hash version 2 writes it (see the module's docstring)."""
    if isinstance(value, int):  # bool is handled by the caller
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        value = Decimal(repr(value))
    elif not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def canonical_json(value) -> str:
    """``value`` (dicts with string keys, lists, strings, numbers, booleans, None) as hash version 2's
    canonical JSON text."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value, out) -> None:
    if isinstance(value, str):
        out(encode_basestring_ascii(value))
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, (int, float, Decimal)):
        out(canonical_number(value))
    elif isinstance(value, dict):
        out("{")
        for index, (key, item) in enumerate(sorted(value.items())):
            if index:
                out(",")
            out(encode_basestring_ascii(key))
            out(":")
            _write(item, out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _write(item, out)
        out("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


def json_problem(value, path: str = "") -> tuple[str, str] | None:
    """(where, what) of the first value in ``value`` that JSON cannot carry — NaN, an infinity, an
    integer longer than ``MAX_INT_DIGITS`` digits — or None. ``where`` is a dotted path (``a.b.2``)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return path, _not_a_number(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return path, _not_a_number(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= _INT_LIMIT:
            return path, f"integers are limited to {MAX_INT_DIGITS} digits"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = json_problem(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = json_problem(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def _not_a_number(value) -> str:
    name = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
    return f"{name} is not a JSON number (JSON numbers are finite)"


def validate_json_value(value) -> None:
    """A field validator: refuse a value JSON cannot carry, naming where it is (``ValidationError``).

    Attached to every model ``JSONField`` (``AuditConfig.ready``): such a value cannot be hashed by the
    audit log the same way after it is read back (PostgreSQL refuses NaN and the infinities; SQLite
    would store them as ``NaN`` and ``Infinity``, which are not JSON)."""
    found = json_problem(value)
    if found:
        where, what = found
        raise ValidationError(
            f"{what}: {where}." if where else f"{what}.", code="invalid_json_number", params={"value": where}
        )
