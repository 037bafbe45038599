"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prisma_glow.api.parsers import loads_strict
from prisma_glow.audit.canonical import json_problem


def check_json_value(value):
    """``value`` unchanged, or a field error naming where it holds what a JSON column cannot store the
    same on both databases (``prisma_glow.audit.canonical.json_problem``)."""
    found = json_problem(value)
    if found:
        where, what = found
        raise serializers.ValidationError(f"{what}: {where}." if where else f"{what}.")
    return value


class JSONValueField(serializers.JSONField):
    """A JSON value stored as sent. Sent as text in a form or multipart body (a document's metadata
    beside its file), it is parsed as strictly as a JSON body; either way, what a JSON column cannot
    hold is refused naming where. ``object_only`` also requires a JSON object."""

    def __init__(self, *args, object_only: bool = False, **kwargs):
        self.object_only = object_only
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data):
        if self.binary or getattr(data, "is_json_string", False):
            text = data.decode() if isinstance(data, bytes) else str(data)
            try:
                value = loads_strict(text)
            except (ValueError, RecursionError) as exc:
                raise serializers.ValidationError(f"Not valid JSON: {str(exc)[:200]}.")
        else:
            value = super().to_internal_value(data)
        if self.object_only and not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        return check_json_value(value)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectValueField(JSONValueField):
    """A JSON object (declared as one in the schema, so that ``null`` or a list is not "schema-valid")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, object_only=True, **kwargs)


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": True}})
class JSONListOfObjectsField(JSONValueField):
    """A JSON list of objects (declared as one in the schema); what each object must hold is the
    service's to check."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise serializers.ValidationError("Expected a JSON list of objects.")
        return value
