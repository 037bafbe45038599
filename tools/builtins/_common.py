"""Helpers shared by the built-in tools: Decimal parsing, rounding and the error they raise."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

# Strings such as "1000", "1,000.50" are not accepted: a decimal point and an optional sign only.
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(\.[0-9]{1,10})?$"

# A money or rate argument: a decimal string (preferred: exact) or a JSON number.
DECIMAL_SCHEMA = {
    "type": ["string", "number"],
    "pattern": DECIMAL_PATTERN,
    "description": 'A decimal number, preferably as a string such as "1000.00".',
}

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}
ROUNDING_SCHEMA = {
    "type": "string",
    "enum": list(ROUNDING_MODES),
    "default": "half_up",
    "description": "half_up (commercial rounding, the default) or half_even (banker's rounding).",
}

MAX_ABS = Decimal("1e15")


class ToolError(ValueError):
    """A tool could not compute a result from valid-looking arguments; the message says why."""


def to_decimal(value, field: str) -> Decimal:
    """``value`` (string or JSON number) as a finite Decimal; floats go through ``str`` (no binary noise)."""
    if isinstance(value, bool) or value is None:
        raise ToolError(f"{field}: a decimal number is required.")
    try:
        number = Decimal(value if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError):
        raise ToolError(f"{field}: {value!r} is not a decimal number.")
    if not number.is_finite():
        raise ToolError(f"{field}: the number must be finite.")
    if abs(number) >= MAX_ABS:
        raise ToolError(f"{field}: the number is too large.")
    return number


def quantize(value: Decimal, places: int, rounding: str = "half_up") -> Decimal:
    """``value`` rounded to ``places`` decimal places with the named rounding mode."""
    exponent = Decimal(1).scaleb(-places)
    return value.quantize(exponent, rounding=ROUNDING_MODES[rounding])


def fmt(value: Decimal) -> str:
    """A Decimal as plain positional text (never scientific notation)."""
    return f"{value:f}"
