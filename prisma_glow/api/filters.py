"""Filters that keep malformed or extreme query values away from the database.

- ``IdFilter``: a foreign key or id filter that takes any id (an unknown one simply matches
  nothing) and declares itself in the schema as an integer within PostgreSQL's bigint range.
- ``IsoDateTimeFilter`` / ``IsoDateTimeFromToRangeFilter``: ISO 8601 date-times normalised to UTC
  (PostgreSQL refuses offsets beyond ±15:59 that RFC 3339 allows) and clamped to the representable
  range, so no well-formed date-time is ever a 500.
- ``FilterSet``: a base FilterSet whose automatic filters for date-time fields use the above.
"""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django import forms
from django.db import models
from django_filters.fields import IsoDateTimeField, IsoDateTimeRangeField
from drf_spectacular.utils import extend_schema_field

BIGINT_MAX = 2**63 - 1
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}


def to_utc(value: datetime | None) -> datetime | None:
    """An aware date-time in UTC; beyond the representable range, the nearest representable one."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if value.year < 5000 else datetime.max.replace(tzinfo=UTC)


class UTCIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        return to_utc(super().to_python(value))


class UTCIsoDateTimeRangeField(IsoDateTimeRangeField):
    def __init__(self, *args, **kwargs):
        fields = (UTCIsoDateTimeField(), UTCIsoDateTimeField())
        super(IsoDateTimeRangeField, self).__init__(fields, *args, **kwargs)


@extend_schema_field({"type": "string", "format": "date-time"})
class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class IsoDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` / ``<name>_before`` (inclusive), ISO 8601, normalised to UTC."""

    field_class = UTCIsoDateTimeRangeField


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


@extend_schema_field(ID_SCHEMA)
class IdFilter(django_filters.NumberFilter):
    """Filter by an id (``owner = IdFilter(field_name="owner_id")``): an unknown id matches nothing
    instead of failing the request, as a ``ModelChoiceFilter`` would."""

    field_class = IdField


class FilterSet(django_filters.FilterSet):
    """Base FilterSet: automatic date-time filters normalise to UTC."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.DateTimeField: {"filter_class": IsoDateTimeFilter},
    }
