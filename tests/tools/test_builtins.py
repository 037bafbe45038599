"""The built-in tools: real Decimal computations, their schemas and their rows in every database."""

from __future__ import annotations

import pytest

from tools.builtins import (
    BUILTIN_MODULES,
    BUILTIN_TOOL_SLUGS,
    ToolError,
    audit_sample_size,
    business_days,
    currency,
    id_validator,
    progressive_tax,
    sync_builtin_tools,
    vat_calculator,
)
from tools.models import Tool
from tools.registry import ToolArgumentsInvalid, run_tool, validate_arguments

# --- VAT ---------------------------------------------------------------------------------------


def test_vat_from_net():
    """VAT is added on top of a net amount and rounded to the cent."""
    assert vat_calculator.run({"net": "1000.00", "rate": "19"}) == {
        "basis": "net",
        "currency": "EUR",
        "rate": "19",
        "net": "1000.00",
        "vat": "190.00",
        "gross": "1190.00",
    }


def test_vat_from_gross_adds_up_to_the_cent():
    """The VAT contained in a gross amount is extracted so that net + VAT = gross exactly."""
    result = vat_calculator.run({"gross": "100.00", "rate": "19"})
    assert (result["net"], result["vat"], result["gross"]) == ("84.03", "15.97", "100.00")


def test_vat_rounding_modes():
    """half_up rounds 0.125 up, half_even to the even cent."""
    assert vat_calculator.run({"net": "2.50", "rate": "5", "rounding": "half_up"})["vat"] == "0.13"
    assert vat_calculator.run({"net": "2.50", "rate": "5", "rounding": "half_even"})["vat"] == "0.12"


def test_vat_accepts_json_numbers_without_float_noise():
    """A JSON number goes through its decimal text, not binary floating point."""
    assert vat_calculator.run({"net": 0.1, "rate": 20})["vat"] == "0.02"


def test_vat_rejects_rates_out_of_range():
    with pytest.raises(ToolError, match="between 0 and 100"):
        vat_calculator.run({"net": "10", "rate": "150"})


def test_vat_needs_net_or_gross_not_both():
    with pytest.raises(ToolError, match="either net"):
        vat_calculator.run({"rate": "19"})
    with pytest.raises(ToolError, match="either net"):
        vat_calculator.run({"rate": "19", "net": "1", "gross": "2"})
    tool = Tool(input_schema=vat_calculator.INPUT_SCHEMA)
    with pytest.raises(ToolArgumentsInvalid, match="does not match"):
        validate_arguments(tool, {"rate": "19", "net": "1,000"})


@pytest.mark.parametrize("slug", BUILTIN_TOOL_SLUGS)
def test_schemas_are_plain_objects_at_the_top(slug):
    """Model providers accept function parameters only as a plain object schema at the top level."""
    schema = BUILTIN_MODULES[slug].INPUT_SCHEMA
    assert schema["type"] == "object"
    assert not {"oneOf", "anyOf", "allOf", "not", "enum"} & set(schema)


# --- Progressive tax -------------------------------------------------------------------------------

BRACKETS = [
    {"up_to": "10000", "rate": "0"},
    {"up_to": "40000", "rate": "20"},
    {"up_to": None, "rate": "40"},
]


def test_progressive_tax_slices():
    """Each rate applies only to the slice of income inside its bracket."""
    result = progressive_tax.run({"income": "50000", "brackets": BRACKETS})
    assert result["tax"] == "10000.00"  # 30,000 × 20% + 10,000 × 40%
    assert result["marginal_rate"] == "40"
    assert result["effective_rate"] == "20.0000"
    assert [b["tax"] for b in result["brackets"]] == ["0.00", "6000.00", "4000.00"]
    assert result["net_income"] == "40000.00"


def test_progressive_tax_inside_first_brackets():
    result = progressive_tax.run({"income": "25000.50", "brackets": BRACKETS})
    assert result["tax"] == "3000.10"
    assert result["marginal_rate"] == "20"


def test_progressive_tax_rejects_unordered_or_closed_brackets():
    with pytest.raises(ToolError, match="ascending"):
        progressive_tax.run(
            {"income": "1", "brackets": [{"up_to": "10", "rate": "1"}, {"up_to": "5", "rate": "2"}]}
        )
    with pytest.raises(ToolError, match="exceeds the last bracket"):
        progressive_tax.run({"income": "100", "brackets": [{"up_to": "10", "rate": "1"}]})
    with pytest.raises(ToolError, match="only the last bracket"):
        progressive_tax.run(
            {"income": "1", "brackets": [{"up_to": None, "rate": "1"}, {"up_to": None, "rate": "2"}]}
        )


# --- Business days -------------------------------------------------------------------------------


def test_business_days_skip_weekends_and_holidays():
    """10 business days after Monday 21 Dec 2026, skipping Christmas, Boxing Day (Saturday) and New Year."""
    result = business_days.run(
        {"start": "2026-12-21", "business_days": 10, "holidays": ["2026-12-25", "2026-12-26", "2027-01-01"]}
    )
    assert result["deadline"] == "2027-01-06"
    assert result["weekday"] == "Wednesday"
    assert result["holidays_skipped"] == ["2026-12-25", "2027-01-01"]


def test_business_days_backwards_and_custom_weekend():
    assert business_days.run({"start": "2026-11-30", "business_days": -1})["deadline"] == "2026-11-27"
    # A Friday–Saturday weekend: Thursday + 1 business day is Sunday.
    assert (
        business_days.run({"start": "2026-11-26", "business_days": 1, "weekend": [4, 5]})["deadline"]
        == "2026-11-29"
    )


def test_business_days_roll_start_and_bad_dates():
    assert (
        business_days.run({"start": "2026-11-28", "business_days": 0, "roll_start": True})["deadline"]
        == "2026-11-30"
    )
    with pytest.raises(ToolError, match="not a valid date"):
        business_days.run({"start": "2026-02-30", "business_days": 1})


# --- VAT number / IBAN -----------------------------------------------------------------------------


def test_valid_iban_is_normalised():
    result = id_validator.run({"value": "de89 3704 0044 0532 0130 00"})
    assert result == {
        "kind": "iban",
        "valid": True,
        "compact": "DE89370400440532013000",
        "country": "DE",
        "formatted": "DE89 3704 0044 0532 0130 00",
    }


def test_iban_with_a_wrong_check_digit_is_invalid():
    result = id_validator.run({"value": "DE88 3704 0044 0532 0130 00", "kind": "iban"})
    assert result["valid"] is False
    assert "checksum" in result["reason"].lower()


def test_vat_numbers():
    assert id_validator.run({"value": "DE136695976"})["valid"] is True
    assert id_validator.run({"value": "EL094259216"})["country"] == "GR"
    assert id_validator.run({"value": "DE136695977", "kind": "vat"})["valid"] is False


# --- Currency ------------------------------------------------------------------------------------


def test_currency_add_subtract_multiply_divide():
    assert currency.run({"operation": "add", "amounts": ["0.10", "0.20"]})["result"] == "0.30"
    assert currency.run({"operation": "subtract", "amounts": ["100", "33.335"]})["result"] == "66.67"
    assert currency.run({"operation": "multiply", "amounts": ["19.99"], "factor": "3"})["result"] == "59.97"
    assert currency.run({"operation": "divide", "amounts": ["100"], "factor": "3"})["result"] == "33.33"
    with pytest.raises(ToolError, match="divide by zero"):
        currency.run({"operation": "divide", "amounts": ["1"], "factor": "0"})


def test_currency_convert_uses_the_target_minor_unit():
    result = currency.run(
        {
            "operation": "convert",
            "amounts": ["100"],
            "currency": "EUR",
            "rate": "162.345",
            "to_currency": "JPY",
        }
    )
    assert result["result"] == "16235"


def test_currency_allocation_sums_exactly():
    """100.00 in three equal parts: the leftover cent goes to the first part."""
    result = currency.run({"operation": "allocate", "amounts": ["100"], "ratios": ["1", "1", "1"]})
    assert result["parts"] == ["33.34", "33.33", "33.33"]
    result = currency.run({"operation": "allocate", "amounts": ["0.05"], "ratios": ["70", "30"]})
    assert result["parts"] == ["0.04", "0.01"]


# --- Audit sample size -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "size", "deviations"),
    [
        # The AICPA attribute-sampling table values (binomial).
        ({"confidence": "95", "tolerable_deviation_rate": "5"}, 59, 0),
        ({"confidence": "95", "tolerable_deviation_rate": "5", "expected_deviation_rate": "1"}, 93, 1),
        ({"confidence": "95", "tolerable_deviation_rate": "5", "expected_deviation_rate": "2"}, 181, 4),
        ({"confidence": "90", "tolerable_deviation_rate": "5"}, 45, 0),
        ({"confidence": "95", "tolerable_deviation_rate": "10", "expected_deviations": 1}, 46, 1),
        ({"confidence": "95", "tolerable_deviation_rate": "5", "method": "poisson"}, 60, 0),
    ],
)
def test_audit_sample_sizes(arguments, size, deviations):
    result = audit_sample_size.run(arguments)
    assert (result["sample_size"], result["expected_deviations"]) == (size, deviations)
    assert float(result["achieved_risk"]) <= 1 - float(arguments["confidence"]) / 100 + 1e-9


def test_audit_sample_size_limits():
    result = audit_sample_size.run({"confidence": "95", "tolerable_deviation_rate": "5", "population": 40})
    assert result["sample_size"] == 40 and "every item" in result["note"]
    with pytest.raises(ToolError, match="not both"):
        audit_sample_size.run(
            {
                "confidence": "95",
                "tolerable_deviation_rate": "5",
                "expected_deviations": 1,
                "expected_deviation_rate": "1",
            }
        )
    with pytest.raises(ToolError, match="No sample"):
        audit_sample_size.run(
            {"confidence": "99", "tolerable_deviation_rate": "20", "expected_deviation_rate": "19"}
        )


# --- Schemas and rows ------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", BUILTIN_TOOL_SLUGS)
def test_every_builtin_schema_is_valid_json_schema(slug):
    from jsonschema import Draft202012Validator

    module = BUILTIN_MODULES[slug]
    Draft202012Validator.check_schema(module.INPUT_SCHEMA)
    Tool(
        name=module.NAME, slug=slug, kind="builtin", builtin_key=slug, input_schema=module.INPUT_SCHEMA
    ).clean()


@pytest.mark.django_db
def test_builtin_rows_exist_and_stay_in_sync():
    """After migrate every built-in has a shared row; a drifted row is put back, others are untouched."""
    rows = Tool.objects.filter(organization__isnull=True, kind="builtin")
    assert sorted(rows.values_list("slug", flat=True)) == sorted(BUILTIN_TOOL_SLUGS)
    Tool.objects.filter(slug="vat-calculator", organization__isnull=True).update(description="stale")
    assert sync_builtin_tools() == 1
    assert (
        Tool.objects.get(slug="vat-calculator", organization__isnull=True).description
        == vat_calculator.DESCRIPTION
    )
    assert sync_builtin_tools() == 0


@pytest.mark.django_db
def test_run_tool_on_builtin_rows():
    tool = Tool.objects.get(slug="vat-calculator", organization__isnull=True)
    result = run_tool(tool, {"net": "1000.00", "rate": "19"})
    assert result.ok and result.output["vat"] == "190.00"
    failed = run_tool(
        Tool.objects.get(slug="currency-calculator", organization__isnull=True),
        {"operation": "divide", "amounts": ["1"], "factor": "0"},
    )
    assert not failed.ok and "divide by zero" in failed.error
    with pytest.raises(ToolArgumentsInvalid) as caught:
        run_tool(tool, {"net": "x", "rate": "19", "extra": 1})
    assert any("extra" in m for m in caught.value.messages)
