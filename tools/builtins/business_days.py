"""Business-day deadlines: a number of working days after (or before) a date, skipping weekends and
configurable holidays."""

from __future__ import annotations

from datetime import date, timedelta

from tools.builtins._common import ToolError

SLUG = "business-day-deadline"
NAME = "Business-day deadline calculator"
DESCRIPTION = (
    "Computes a deadline a number of business days after a start date (negative: before it), "
    "skipping weekend days and the given public holidays. Dates are ISO 8601 (YYYY-MM-DD). "
    "Use it for filing and response deadlines."
)
DATE_SCHEMA = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "start": {**DATE_SCHEMA, "description": "The date the period starts from (day 0)."},
        "business_days": {"type": "integer", "minimum": -3650, "maximum": 3650},
        "holidays": {
            "type": "array",
            "items": DATE_SCHEMA,
            "maxItems": 1000,
            "default": [],
            "description": "Public holidays to skip (YYYY-MM-DD).",
        },
        "weekend": {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 6},
            "maxItems": 6,
            "uniqueItems": True,
            "default": [5, 6],
            "description": "Weekend days, 0 = Monday … 6 = Sunday. Default Saturday and Sunday.",
        },
        "roll_start": {
            "type": "boolean",
            "default": False,
            "description": "With 0 business days: move a start on a non-business day to the next business day.",
        },
    },
    "required": ["start", "business_days"],
    "additionalProperties": False,
}


def _parse(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolError(f"{field}: {value!r} is not a valid date (YYYY-MM-DD).")


def run(arguments: dict) -> dict:
    start = _parse(arguments["start"], "start")
    count = int(arguments["business_days"])
    holidays = {_parse(value, "holidays") for value in arguments.get("holidays", [])}
    weekend = set(arguments.get("weekend", [5, 6]))
    if len(weekend) >= 7:
        raise ToolError("weekend: at least one day of the week must be a business day.")

    def is_business(day: date) -> bool:
        return day.weekday() not in weekend and day not in holidays

    step = 1 if count >= 0 else -1
    current = start
    skipped_holidays = []
    remaining = abs(count)
    while remaining:
        current += timedelta(days=step)
        if is_business(current):
            remaining -= 1
        elif current in holidays and current.weekday() not in weekend:
            skipped_holidays.append(current.isoformat())
    if count == 0 and arguments.get("roll_start") and not is_business(current):
        while not is_business(current):
            if current in holidays and current.weekday() not in weekend:
                skipped_holidays.append(current.isoformat())
            current += timedelta(days=1)
    return {
        "start": start.isoformat(),
        "business_days": count,
        "deadline": current.isoformat(),
        "weekday": current.strftime("%A"),
        "calendar_days": (current - start).days,
        "holidays_skipped": skipped_holidays,
    }
