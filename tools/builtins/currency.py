"""Currency arithmetic in exact decimals: sums, differences, scaling, conversion at a given rate and
allocation of an amount into parts that add up to the cent."""

from __future__ import annotations

from decimal import Decimal

from tools.builtins._common import DECIMAL_SCHEMA, ROUNDING_SCHEMA, ToolError, fmt, quantize, to_decimal

SLUG = "currency-calculator"
NAME = "Currency calculator"
DESCRIPTION = (
    "Exact money arithmetic. operation: add or subtract (amounts), multiply or divide (amounts[0] by "
    "factor), convert (amounts[0] at rate into to_currency), allocate (amounts[0] split by ratios, "
    "parts summing exactly to the total). Results are rounded to the currency's minor unit."
)
# ISO 4217 minor units that differ from 2 (the default).
MINOR_UNITS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "operation": {
            "type": "string",
            "enum": ["add", "subtract", "multiply", "divide", "convert", "allocate"],
        },
        "amounts": {"type": "array", "items": DECIMAL_SCHEMA, "minItems": 1, "maxItems": 1000},
        "currency": {**CURRENCY, "default": "EUR"},
        "factor": {**DECIMAL_SCHEMA, "description": "For multiply and divide."},
        "rate": {**DECIMAL_SCHEMA, "description": "For convert: units of to_currency per unit of currency."},
        "to_currency": {**CURRENCY, "description": "For convert."},
        "ratios": {
            "type": "array",
            "items": DECIMAL_SCHEMA,
            "minItems": 1,
            "maxItems": 1000,
            "description": "For allocate: relative shares, e.g. [1, 1, 1] or [70, 30].",
        },
        "rounding": ROUNDING_SCHEMA,
    },
    "required": ["operation", "amounts"],
    "additionalProperties": False,
}


def places_for(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def _allocate(total: Decimal, ratios: list[Decimal], places: int) -> list[Decimal]:
    """Largest-remainder allocation: every part rounded down, leftover units to the largest remainders."""
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ToolError("ratios: shares must be non-negative and not all zero.")
    unit = Decimal(1).scaleb(-places)
    sign = -1 if total < 0 else 1
    units_total = int((abs(total) / unit).to_integral_value())
    weight = sum(ratios)
    exact = [Decimal(units_total) * r / weight for r in ratios]
    floors = [int(e) for e in exact]
    leftover = units_total - sum(floors)
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += 1
    return [sign * Decimal(f) * unit for f in floors]


def run(arguments: dict) -> dict:
    operation = arguments["operation"]
    currency = arguments.get("currency", "EUR")
    rounding = arguments.get("rounding", "half_up")
    places = places_for(currency)
    amounts = [to_decimal(value, f"amounts[{i}]") for i, value in enumerate(arguments["amounts"])]
    result: dict = {"operation": operation, "currency": currency}
    if operation in ("add", "subtract"):
        value = amounts[0] + sum(amounts[1:]) if operation == "add" else amounts[0] - sum(amounts[1:])
        result["result"] = fmt(quantize(value, places, rounding))
    elif operation in ("multiply", "divide"):
        if "factor" not in arguments:
            raise ToolError(f"factor: required for {operation}.")
        factor = to_decimal(arguments["factor"], "factor")
        if operation == "divide" and factor == 0:
            raise ToolError("factor: cannot divide by zero.")
        value = amounts[0] * factor if operation == "multiply" else amounts[0] / factor
        result["result"] = fmt(quantize(value, places, rounding))
    elif operation == "convert":
        if "rate" not in arguments or "to_currency" not in arguments:
            raise ToolError("convert needs rate and to_currency.")
        rate = to_decimal(arguments["rate"], "rate")
        if rate <= 0:
            raise ToolError("rate: the exchange rate must be positive.")
        target = arguments["to_currency"]
        result.update(
            {
                "to_currency": target,
                "rate": fmt(rate),
                "result": fmt(quantize(amounts[0] * rate, places_for(target), rounding)),
            }
        )
    else:  # allocate
        ratios = [to_decimal(value, f"ratios[{i}]") for i, value in enumerate(arguments.get("ratios") or [])]
        if not ratios:
            raise ToolError("ratios: required for allocate.")
        total = quantize(amounts[0], places, rounding)
        parts = _allocate(total, ratios, places)
        result.update({"total": fmt(total), "parts": [fmt(quantize(p, places)) for p in parts]})
    return result
