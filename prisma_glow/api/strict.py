"""Strict request handling shared by every serializer and filter of the API.

"Nothing a user sends is lost or silently changed": a field a serializer does not know is a 400
naming it rather than being dropped (a known read-only field, such as ``id`` echoed back from a
GET, is ignored as before), and a boolean filter given something other
than ``true`` / ``false`` is a 400 rather than being ignored. The schema says the same
(``additionalProperties: false`` on request bodies; see ``prisma_glow.api.schema``).

A serializer that takes free-form keys on purpose sets ``allow_unknown_fields = True``.

Text fields take text only: DRF's ``CharField`` would turn a JSON number into a string (``12`` →
``"12"``), silently changing what was sent; here it is a 400. Their ``max_length`` counts what was
sent, before surrounding whitespace is trimmed, as the schema's ``maxLength`` does.

Boolean fields take booleans only, as the schema says: DRF's ``BooleanField`` reads ``1``, ``0``,
``"true"``, ``"yes"``, ``"on"``… as booleans; here a JSON body's boolean is JSON ``true`` / ``false``
and anything else is a 400 "Must be true or false.". A form or multipart body carries only text, so
there (and only there) the text ``true`` / ``false`` (any case) is read as the boolean.

Number fields take numbers, never booleans: DRF's ``FloatField`` reads ``false`` as ``0.0`` and
``true`` as ``1.0`` (Python's ``bool`` is an ``int``); here a boolean given for an integer, a float or
a decimal is a 400 "Must be a number, not true or false." (found by schemathesis on ``min_score`` and
``temperature``).

Decimals are strings or whole numbers, as the schema says (``"0.20"``, ``"12.500000"``, ``2000000``):
a JSON number with a fraction or an exponent given for a decimal (``"temperature": 0.2``, ``1e3``) is a
400 'Give the decimal as a string, e.g. "0.20"' rather than being read through a binary float, which
cannot hold most decimal fractions exactly (``0.1 + 0.2`` arrives as ``0.30000000000000004``). A JSON
integer is exact, so it is taken, within the field's digits and bounds as any decimal
(``"limit": 2000000`` worked before decimals were checked, and still does). Form bodies carry text
anyway. Answers always show decimals as strings.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.http import QueryDict
from django_filters import BooleanFilter, CharFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, serializers

UNKNOWN_FIELD_MESSAGE = "Unknown field: it is not accepted here."
_original_to_internal_value = serializers.Serializer.to_internal_value


def unknown_fields(serializer: serializers.Serializer, data) -> list[str]:
    if not isinstance(data, Mapping) or getattr(serializer, "allow_unknown_fields", False):
        return []
    known = serializer.fields.keys()
    return sorted(str(key) for key in data if key not in known)[:20]


def strict_to_internal_value(self, data):
    unknown = unknown_fields(self, data)
    if unknown:
        raise exceptions.ValidationError({name: [UNKNOWN_FIELD_MESSAGE] for name in unknown})
    return _original_to_internal_value(self, data)


_original_char_to_internal_value = serializers.CharField.to_internal_value


def strict_char_to_internal_value(self, data):
    if not isinstance(data, str):
        raise exceptions.ValidationError("Not a valid string.", code="invalid")
    # The schema's maxLength is on what is sent: DRF would trim first and let 201 characters through
    # a 200 limit when one of them is surrounding whitespace (found by schemathesis).
    max_length = getattr(self, "max_length", None)
    if max_length is not None and len(data) > max_length:
        self.fail("max_length", max_length=max_length)
    return _original_char_to_internal_value(self, data)


BOOLEAN_MESSAGE = "Must be true or false."
_FORM_BOOLEANS = {"true": True, "false": False}


def _from_form(field: serializers.Field) -> bool:
    """Whether the data being validated came from a form or multipart body (text only)."""
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


def strict_boolean_to_internal_value(self, data):
    if isinstance(data, bool):
        return data
    if isinstance(data, str) and _from_form(self):
        value = _FORM_BOOLEANS.get(data.strip().lower())
        if value is not None:
            return value
    raise exceptions.ValidationError(BOOLEAN_MESSAGE, code="invalid")


NUMBER_MESSAGE = "Must be a number, not true or false."
DECIMAL_MESSAGE = 'Give the decimal as a string, e.g. "0.20": a JSON number can lose precision.'
_NUMBER_FIELDS = (serializers.IntegerField, serializers.FloatField, serializers.DecimalField)
_original_number_to_internal_value = {cls: cls.to_internal_value for cls in _NUMBER_FIELDS}


def _strict_number(cls):
    original = _original_number_to_internal_value[cls]

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise exceptions.ValidationError(NUMBER_MESSAGE, code="invalid")
        # A JSON integer is exact (and JSON's parser gives a Python int); a float is not.
        if cls is serializers.DecimalField and isinstance(data, float):
            raise exceptions.ValidationError(DECIMAL_MESSAGE, code="invalid")
        return original(self, data)

    to_internal_value.strict = True
    return to_internal_value


def install() -> None:
    """Make every DRF serializer reject unknown fields, non-text values for text fields,
    non-booleans for boolean fields, booleans for number fields and floats for decimal fields (called
    once from the API app's ready())."""
    if serializers.Serializer.to_internal_value is not strict_to_internal_value:
        serializers.Serializer.to_internal_value = strict_to_internal_value
    if serializers.CharField.to_internal_value is not strict_char_to_internal_value:
        serializers.CharField.to_internal_value = strict_char_to_internal_value
    if serializers.BooleanField.to_internal_value is not strict_boolean_to_internal_value:
        serializers.BooleanField.to_internal_value = strict_boolean_to_internal_value
    for cls in _NUMBER_FIELDS:
        if not getattr(cls.to_internal_value, "strict", False):
            cls.to_internal_value = _strict_number(cls)


BOOLEAN_VALUES = {"true", "false"}


def _param_names(name: str, filter_) -> list[str]:
    """The query parameters a filter reads (range filters read ``<name>_after`` / ``_before``…)."""
    suffixes = getattr(filter_.field.widget, "suffixes", None)
    if suffixes:
        return [f"{name}_{suffix}" if suffix else name for suffix in suffixes]
    return [name]


class StrictDjangoFilterBackend(DjangoFilterBackend):
    """django-filter's backend, refusing what django-filter would silently ignore (and so list
    everything instead of a subset): a boolean other than ``true`` / ``false``, and an empty value for
    a filter that is not free text (``?role=``, ``?agent=``, ``?created_after=``)."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            errors = {}
            for name, filter_ in filterset.filters.items():
                for param in _param_names(name, filter_):
                    if param not in request.query_params:
                        continue
                    values = request.query_params.getlist(param)
                    if isinstance(filter_, BooleanFilter):
                        if any(value.lower() not in BOOLEAN_VALUES for value in values):
                            errors[param] = ["Give true or false."]
                    elif not isinstance(filter_, CharFilter) and any(value == "" for value in values):
                        errors[param] = ["Give a value, or leave the parameter out."]
            if errors:
                raise exceptions.ValidationError(errors)
        return filterset
