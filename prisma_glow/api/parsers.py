"""Request parsers that reject what the database cannot store, in one place.

PostgreSQL refuses the NUL character in text columns; a NUL anywhere in a request body (a value or a
key, at any depth) is therefore a 400 naming the field, never a 500 from the database. Invalid JSON,
bytes that are not UTF-8, and numbers JSON cannot carry (``NaN``, ``Infinity``, a number past a float's
range, an integer longer than Python reads back) are 400 too, with a message that names them: nothing
is stored that the database would give back otherwise, or that the audit log could not hash (see
``prisma_glow.audit.canonical``).
"""

from __future__ import annotations

import codecs
import json
import math

from django.conf import settings
from rest_framework import exceptions, parsers

from prisma_glow.audit.canonical import MAX_INT_DIGITS, UNSTORABLE_TEXT, json_problem

NUL_MESSAGE = UNSTORABLE_TEXT


def find_nul(value, path: str = "") -> str | None:
    """The path (``field``, ``items.2.name``) of the first string or key that cannot be stored, or None."""
    found = json_problem(value, path)
    if found is None or found[1] != UNSTORABLE_TEXT.rstrip("."):
        return None
    return found[0] or "non_field_errors"


def reject_nul(value) -> None:
    path = find_nul(value)
    if path is not None:
        field = path.split(".", 1)[0]
        raise exceptions.ValidationError({field: [NUL_MESSAGE]})


def reject_unstorable(value) -> None:
    """A 400 naming the field for anything a JSON column could not hold (``json_problem``): a NUL or an
    unpaired surrogate, nesting past the limit (numbers were refused while parsing)."""
    found = json_problem(value)
    if found is None:
        return
    where, what = found
    field = where.split(".", 1)[0] or "non_field_errors"
    message = NUL_MESSAGE if what == UNSTORABLE_TEXT.rstrip(".") else f"{what} ({where or 'the body'})."
    raise exceptions.ValidationError({field: [message]})


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (JSON numbers are finite: no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range (the largest is about 1.8e308)")
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer has {digits} digits; the limit is {MAX_INT_DIGITS}")
    return int(text)


def loads_strict(text: str):
    """``json.loads`` that refuses NaN, the infinities, floats past their range and integers too long to
    read back (``ValueError`` with a message that names them)."""
    return json.loads(
        text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
    )


class JSONParser(parsers.JSONParser):
    """Strict JSON: UTF-8 only, no NaN/Infinity, no NUL characters in strings."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read() if stream is not None else b""
            text = codecs.decode(raw, encoding) if isinstance(raw, bytes) else raw
            if not text.strip():
                raise ValueError("the request body is empty")
            data = loads_strict(text)
        except (ValueError, LookupError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error: {str(exc)[:200]}")
        reject_unstorable(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        reject_nul({k: data.getlist(k) for k in data})
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        reject_nul({k: result.data.getlist(k) for k in result.data})
        return result
