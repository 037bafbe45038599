"""VAT amount calculator: from a net or a gross amount and a rate, the net, VAT and gross amounts."""

from __future__ import annotations

from decimal import Decimal

from tools.builtins._common import DECIMAL_SCHEMA, ROUNDING_SCHEMA, ToolError, fmt, quantize, to_decimal

SLUG = "vat-calculator"
NAME = "VAT calculator"
DESCRIPTION = (
    "Computes VAT from a net amount (VAT added on top) or from a gross amount (VAT included), "
    "with the VAT rate in percent. Returns net, VAT and gross amounts rounded to the currency's "
    'decimals. Example: {"net": "1000.00", "rate": "19"} gives VAT 190.00 and gross 1190.00.'
)
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "net": {**DECIMAL_SCHEMA, "description": "Amount before VAT. Give net or gross, not both."},
        "gross": {**DECIMAL_SCHEMA, "description": "Amount including VAT. Give net or gross, not both."},
        "rate": {**DECIMAL_SCHEMA, "description": 'VAT rate in percent, e.g. "19" or "5.5".'},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "EUR"},
        "decimals": {"type": "integer", "minimum": 0, "maximum": 4, "default": 2},
        "rounding": ROUNDING_SCHEMA,
    },
    "required": ["rate"],
    # "net or gross, not both" is checked in run(): model providers refuse oneOf at a schema's top level.
    "additionalProperties": False,
}


def run(arguments: dict) -> dict:
    """VAT on top of ``net`` or contained in ``gross``; the VAT is rounded once and the rest derived
    from it, so net + VAT = gross to the cent."""
    if ("net" in arguments) == ("gross" in arguments):
        raise ToolError(
            "Give either net (VAT added on top) or gross (VAT included), not both and not neither."
        )
    rate = to_decimal(arguments["rate"], "rate")
    if rate < 0 or rate > 100:
        raise ToolError("rate: the VAT rate must be between 0 and 100 percent.")
    places = int(arguments.get("decimals", 2))
    rounding = arguments.get("rounding", "half_up")
    currency = arguments.get("currency", "EUR")
    if "net" in arguments:
        net = quantize(to_decimal(arguments["net"], "net"), places, rounding)
        vat = quantize(net * rate / Decimal(100), places, rounding)
        gross = net + vat
        basis = "net"
    else:
        gross = quantize(to_decimal(arguments["gross"], "gross"), places, rounding)
        vat = quantize(gross * rate / (Decimal(100) + rate), places, rounding)
        net = gross - vat
        basis = "gross"
    return {
        "basis": basis,
        "currency": currency,
        "rate": fmt(rate),
        "net": fmt(net),
        "vat": fmt(vat),
        "gross": fmt(gross),
    }
