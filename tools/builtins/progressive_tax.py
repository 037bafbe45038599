"""Progressive tax: income taxed slice by slice over configurable brackets."""

from __future__ import annotations

from decimal import Decimal

from tools.builtins._common import DECIMAL_SCHEMA, ROUNDING_SCHEMA, ToolError, fmt, quantize, to_decimal

SLUG = "progressive-tax"
NAME = "Progressive tax calculator"
DESCRIPTION = (
    "Computes tax on an income over progressive brackets: each bracket's rate applies only to the "
    "part of the income inside that bracket. Brackets are given in ascending order as "
    '{"up_to": upper limit or null for the top bracket, "rate": percent}. Returns the tax, the '
    "effective and marginal rates and the tax per bracket."
)
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "income": {**DECIMAL_SCHEMA, "description": "Taxable income."},
        "brackets": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "type": "object",
                "properties": {
                    "up_to": {
                        "anyOf": [DECIMAL_SCHEMA, {"type": "null"}],
                        "description": "Upper limit of the bracket; null for the top bracket.",
                    },
                    "rate": {**DECIMAL_SCHEMA, "description": "Rate in percent."},
                },
                "required": ["up_to", "rate"],
                "additionalProperties": False,
            },
        },
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "EUR"},
        "decimals": {"type": "integer", "minimum": 0, "maximum": 4, "default": 2},
        "rounding": ROUNDING_SCHEMA,
    },
    "required": ["income", "brackets"],
    "additionalProperties": False,
}


def run(arguments: dict) -> dict:
    income = to_decimal(arguments["income"], "income")
    if income < 0:
        raise ToolError("income: the income cannot be negative.")
    places = int(arguments.get("decimals", 2))
    rounding = arguments.get("rounding", "half_up")
    brackets = []
    previous = Decimal(0)
    for index, bracket in enumerate(arguments["brackets"]):
        rate = to_decimal(bracket["rate"], f"brackets[{index}].rate")
        if rate < 0 or rate > 100:
            raise ToolError(f"brackets[{index}].rate: rates are percentages between 0 and 100.")
        limit = bracket["up_to"]
        if limit is None:
            if index != len(arguments["brackets"]) - 1:
                raise ToolError(f"brackets[{index}]: only the last bracket may be open-ended (up_to null).")
            upper = None
        else:
            upper = to_decimal(limit, f"brackets[{index}].up_to")
            if upper <= previous:
                raise ToolError(f"brackets[{index}].up_to: limits must be positive and ascending.")
            previous = upper
        brackets.append((upper, rate))
    if brackets[-1][0] is not None and income > brackets[-1][0]:
        raise ToolError(
            "brackets: the income exceeds the last bracket; end with an open bracket (up_to null)."
        )

    lower = Decimal(0)
    total = Decimal(0)
    marginal = brackets[0][1]
    breakdown = []
    for upper, rate in brackets:
        if income <= lower:
            break
        top = income if upper is None else min(income, upper)
        taxable = top - lower
        tax = taxable * rate / Decimal(100)
        total += tax
        marginal = rate
        breakdown.append(
            {
                "from": fmt(lower),
                "to": fmt(upper) if upper is not None else None,
                "rate": fmt(rate),
                "taxable": fmt(quantize(taxable, places, rounding)),
                "tax": fmt(quantize(tax, places, rounding)),
            }
        )
        if upper is None:
            break
        lower = upper
    total = quantize(total, places, rounding)
    effective = quantize(total * 100 / income, 4, rounding) if income else Decimal(0)
    return {
        "currency": arguments.get("currency", "EUR"),
        "income": fmt(income),
        "tax": fmt(total),
        "net_income": fmt(quantize(income, places, rounding) - total),
        "effective_rate": fmt(effective),
        "marginal_rate": fmt(marginal),
        "brackets": breakdown,
    }
