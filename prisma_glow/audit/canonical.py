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


#: Deepest nesting a stored JSON value may have. ``json.loads`` reads about 1,500 levels, but the checks,
#: the audit snapshot and the canonical writer walk values recursively; no configuration needs more.
MAX_JSON_DEPTH = 100

UNSTORABLE_TEXT = "The NUL character (\\u0000) and unpaired surrogates are not allowed."


def unstorable_text(text: str) -> bool:
    """A NUL (PostgreSQL refuses it in text and jsonb) or a lone UTF-16 surrogate (valid as a JSON
    escape, not encodable as UTF-8, so no database stores it as sent)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_problem(value, path: str = "") -> tuple[str, str] | None:
    """(where, what) of the first thing in ``value`` a JSON column cannot hold the same on both databases
    — NaN, an infinity, an integer longer than ``MAX_INT_DIGITS`` digits, a NUL or an unpaired surrogate
    in a string or a key, nesting deeper than ``MAX_JSON_DEPTH`` — or None. ``where`` is a dotted path
    (``a.b.2``). Iterative, so no input can exhaust the stack."""
    stack = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if unstorable_text(item):
                return where, UNSTORABLE_TEXT.rstrip(".")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return where, _not_a_number(item)
        elif isinstance(item, Decimal):
            if not item.is_finite():
                return where, _not_a_number(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            if abs(item) >= _INT_LIMIT:
                return where, f"integers are limited to {MAX_INT_DIGITS} digits"
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_JSON_DEPTH:
                return where, f"JSON is limited to {MAX_JSON_DEPTH} levels of nesting"
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    if isinstance(key, str) and unstorable_text(key):
                        return where, UNSTORABLE_TEXT.rstrip(".")
                    children.append((child, f"{where}.{key}" if where else str(key), depth + 1))
            else:
                children = [
                    (child, f"{where}.{i}" if where else str(i), depth + 1) for i, child in enumerate(item)
                ]
            stack.extend(reversed(children))
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
