"""Numbers typed as text: ids in query strings and forms, release numbers.

``str.isdigit()`` is true for ``"²"`` and ``"٣"``; ``int()`` refuses the first and reads the second
as 3. A number sent by a person or a client is ASCII digits, and an id fits a bigint."""

from __future__ import annotations


def parse_id(raw) -> int | None:
    """An id sent as text (a query parameter, a form's value) as an int, or None when it is not one:
    ASCII digits only and at most 18 of them, so that it fits a bigint and a lookup never fails."""
    if isinstance(raw, str) and is_ascii_digits(raw) and len(raw) <= 18:
        return int(raw)
    return None


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the digits 0–9 (``"²"`` and ``"٣"`` are not)."""
    return text.isascii() and text.isdigit()
