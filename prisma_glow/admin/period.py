"""The dashboard's date range: which days its panels describe.

The index reads it from the query string — ``?range=today|7d|30d|month`` or
``?range=custom&from=YYYY-MM-DD&to=YYYY-MM-DD`` — and hands it to the panels that ask for it
(``register_dashboard_panel(..., uses_period=True)``). Days are the site's time zone's; a range is
whole days, ``end`` included. A custom range that cannot be read (a malformed date, ``from`` after
``to``, more than ``MAX_DAYS``) is not an error page: the dashboard shows the default range with a
message saying what to fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

PRESETS = [
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
]
DEFAULT = "month"
CUSTOM = "custom"
#: The longest custom range (a year and a day, so that a full leap year fits).
MAX_DAYS = 367
FIRST_YEAR, LAST_YEAR = 2000, 2999


@dataclass(frozen=True)
class Period:
    """Whole days ``start`` … ``end`` (both included) in the current time zone."""

    key: str
    start: dt.date
    end: dt.date
    label: str
    error: str = ""
    raw_from: str = ""
    raw_to: str = ""
    presets: list = field(default_factory=lambda: PRESETS, compare=False)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def start_at(self) -> dt.datetime:
        """The first instant of the range (aware)."""
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end_before(self) -> dt.datetime:
        """The first instant after the range (aware)."""
        return dt.datetime.combine(
            self.end + dt.timedelta(days=1), dt.time.min, tzinfo=timezone.get_current_timezone()
        )

    def filter(self, queryset, field_name: str = "created_at"):
        """``queryset`` limited to rows whose ``field_name`` falls in the range."""
        return queryset.filter(**{f"{field_name}__gte": self.start_at, f"{field_name}__lt": self.end_before})

    @property
    def query(self) -> str:
        """The query string that selects this range again."""
        if self.key == CUSTOM:
            return f"range=custom&from={self.start.isoformat()}&to={self.end.isoformat()}"
        return f"range={self.key}"


def preset(key: str, today: dt.date) -> Period:
    label = dict(PRESETS)[key]
    if key == "today":
        return Period(key, today, today, label)
    if key == "7d":
        return Period(key, today - dt.timedelta(days=6), today, label)
    if key == "30d":
        return Period(key, today - dt.timedelta(days=29), today, label)
    return Period(key, today.replace(day=1), today, label)


def _date(raw: str, name: str) -> dt.date:
    try:
        value = dt.date.fromisoformat(raw.strip())
    except (ValueError, AttributeError):
        raise ValueError(
            f"The {name} date {raw.strip()[:20]!r} is not a date: use the form YYYY-MM-DD, e.g. 2026-03-31."
            if raw and raw.strip()
            else f"Give a {name} date (YYYY-MM-DD) for a custom range."
        ) from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"The {name} date {value.isoformat()} is out of range: use a year from {FIRST_YEAR} to {LAST_YEAR}."
        )
    return value


def parse_period(params, *, today: dt.date | None = None) -> Period:
    """The range ``params`` (a QueryDict or dict) asks for; the default, with ``error`` set, when a
    custom range cannot be read. An unknown ``range`` value is the default too (no message: it is
    not something a person typed)."""
    today = today or timezone.localdate()
    key = (params.get("range") or DEFAULT).strip()
    if key != CUSTOM:
        return preset(key if key in dict(PRESETS) else DEFAULT, today)
    raw_from, raw_to = params.get("from") or "", params.get("to") or ""
    try:
        start, end = _date(raw_from, "from"), _date(raw_to, "to")
        if start > end:
            raise ValueError(
                f"The range starts ({start.isoformat()}) after it ends ({end.isoformat()}): swap the dates."
            )
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"A custom range covers at most {MAX_DAYS} days: choose a shorter one.")
    except ValueError as exc:
        fallback = preset(DEFAULT, today)
        return Period(
            fallback.key,
            fallback.start,
            fallback.end,
            fallback.label,
            error=f"{exc} Showing {fallback.label.lower()} instead.",
            raw_from=raw_from[:20],
            raw_to=raw_to[:20],
        )
    label = start.strftime("%-d %b %Y") if start == end else f"{start:%-d %b %Y} – {end:%-d %b %Y}"
    return Period(CUSTOM, start, end, label, raw_from=start.isoformat(), raw_to=end.isoformat())
