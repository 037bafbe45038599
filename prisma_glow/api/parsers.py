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

from prisma_glow.audit.canonical import MAX_INT_DIGITS

NUL = "\x00"
NUL_MESSAGE = "The NUL character (\\u0000) and unpaired surrogates are not allowed."


def _unstorable(text: str) -> bool:
    """A NUL, or a lone UTF-16 surrogate (valid in JSON escapes, not encodable as UTF-8)."""
    if NUL in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def find_nul(value, path: str = "") -> str | None:
    """The path (``field``, ``items.2.name``) of the first string that cannot be stored, or None."""
    if isinstance(value, str):
        return path or "non_field_errors" if _unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            child = f"{path}.{key_text}" if path else key_text
            if _unstorable(key_text):
                return path or "non_field_errors"
            found = find_nul(item, child)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}.{index}" if path else "non_field_errors")
            if found:
                return found
    return None


def reject_nul(value) -> None:
    path = find_nul(value)
    if path is not None:
        field = path.split(".", 1)[0]
        raise exceptions.ValidationError({field: [NUL_MESSAGE]})


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
            data = json.loads(
                text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
            )
        except (ValueError, LookupError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error: {str(exc)[:200]}")
        reject_nul(data)
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
