"""Validates EU VAT numbers and IBANs with python-stdnum (check digits, length, country format)."""

from __future__ import annotations

from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

SLUG = "vat-iban-validator"
NAME = "VAT number and IBAN validator"
DESCRIPTION = (
    "Checks whether an EU VAT identification number or an IBAN is well formed (country format and "
    "check digits; it does not query VIES or a bank). Returns valid, the normalised form and, when "
    "invalid, the reason."
)
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "value": {"type": "string", "minLength": 1, "maxLength": 64},
        "kind": {
            "type": "string",
            "enum": ["auto", "vat", "iban"],
            "default": "auto",
            "description": "vat, iban, or auto (decide from the value).",
        },
    },
    "required": ["value"],
    "additionalProperties": False,
}


def _detect(value: str) -> str:
    compact = stdnum_iban.compact(value)
    # IBANs are 15–34 characters: two letters, two check digits, then the account; VAT numbers are shorter.
    if len(compact) >= 15 and compact[:2].isalpha() and compact[2:4].isdigit():
        return "iban"
    return "vat"


def run(arguments: dict) -> dict:
    value = arguments["value"]
    kind = arguments.get("kind", "auto")
    if kind == "auto":
        kind = _detect(value)
    module = stdnum_iban if kind == "iban" else stdnum_vat
    try:
        compact = module.validate(value)
    except StdnumValidationError as exc:
        return {"kind": kind, "valid": False, "reason": str(exc) or exc.__class__.__name__}
    result = {"kind": kind, "valid": True, "compact": compact, "country": compact[:2].upper()}
    if kind == "iban":
        result["formatted"] = stdnum_iban.format(compact)
    else:
        # Greece uses "EL" as its VAT prefix; the country itself is GR.
        result["country"] = "GR" if result["country"] == "EL" else result["country"]
    return result
