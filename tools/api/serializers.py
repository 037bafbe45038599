"""Serializers of the tools API. Writes go through ``tools.services``; these only shape and check input."""

from __future__ import annotations

import re

from django.core.validators import URLValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prisma_glow.api.fields import JSONValueField
from tools.http_executor import HEADER_VALUE_PATTERN
from tools.models import Tool


class SafeJSONField(JSONValueField):
    """A JSON field that refuses what a JSON column cannot hold; ``object_only`` requires an object."""


# What Django's URLValidator accepts, as a JSON Schema pattern (a host name with a top-level domain,
# localhost or an IPv4 address; an optional port; a path, query or fragment without spaces).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
HTTP_URL_PATTERN = (
    r"https?://(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}|localhost"
    rf"|{_OCTET}(?:\.{_OCTET}){{3}})(?::[0-9]{{1,5}})?(?:[/?#][^\s\x00]*)?"
)


class PatternStringField(serializers.CharField):
    """A string checked against ``pattern`` on write; the schema states the pattern for requests only,
    so stored values that predate it (a built-in tool's empty URL) still match the response schema.
    (Not a ``RegexField``: drf-spectacular would copy its validator's pattern into both directions.)"""

    def __init__(self, pattern: str, *, url: bool = False, **kwargs):
        self.pattern = pattern
        self.compiled = re.compile(pattern)
        self.url = url
        kwargs.setdefault("error_messages", {})
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not self.compiled.search(value):
            raise serializers.ValidationError(self.error_messages.get("invalid", "Enter a valid value."))
        if self.url and value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except Exception as exc:  # Django's ValidationError: report it as a field error
                raise serializers.ValidationError("Enter a valid http(s) URL.") from exc
        return value


class PatternStringFieldExtension(OpenApiSerializerFieldExtension):
    target_class = PatternStringField

    def map_serializer_field(self, auto_schema, direction):
        schema = {"type": "string"}
        if self.target.max_length is not None:
            schema["maxLength"] = self.target.max_length
        if direction == "request":
            schema["pattern"] = self.target.pattern
        return schema


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(SafeJSONField):
    """A JSON object (declared as such in the schema), without NUL characters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, object_only=True, **kwargs)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string", "pattern": HEADER_VALUE_PATTERN}}
)
class StringMapField(JSONObjectField):
    """A JSON object of HTTP headers. ``Tool.clean`` refuses what HTTP cannot carry (the service's 400
    names the header); the schema states the values' pattern; the names' (tokens) needs
    ``propertyNames`` (OpenAPI 3.1)."""


class ToolSerializer(serializers.ModelSerializer):
    """A tool. ``secret_headers`` is write-only (stored encrypted; ``has_secret_headers`` says if set).
    Built-in tools (``is_builtin``) are shared by every organisation and read-only. ``inside_firm``: the
    tool receives the client identifiers behind a run's placeholders (always true for built-in tools).
    ``requires_approval``: each call waits for a person's approval; left out on create, it is true unless
    ``read_only`` is (``tools.models.approval_default``)."""

    is_builtin = serializers.SerializerMethodField()
    input_schema = JSONObjectField(required=False, help_text="A JSON Schema for the arguments (an object).")
    headers = StringMapField(required=False)
    secret_headers = StringMapField(
        required=False,
        write_only=True,
        help_text='Header values kept secret, e.g. {"Authorization": "Bearer <token>"}; never returned.',
    )
    has_secret_headers = serializers.SerializerMethodField()
    slug = serializers.SlugField(max_length=80, required=False, allow_blank=True)
    url_template = PatternStringField(
        r"^https?://[^\s\x00]+$",
        max_length=500,
        help_text="An http(s) URL; {name} placeholders take arguments in the path, query or fragment (never "
        "the host or port); {{ and }} are literal braces.",
        error_messages={"invalid": "The URL must start with http:// or https:// and contain no spaces."},
    )
    kind = serializers.CharField(read_only=True)

    class Meta:
        model = Tool
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "is_builtin",
            "description",
            "input_schema",
            "builtin_key",
            "http_method",
            "url_template",
            "headers",
            "secret_headers",
            "has_secret_headers",
            "timeout_seconds",
            "max_response_bytes",
            "is_enabled",
            "inside_firm",
            "read_only",
            "requires_approval",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["builtin_key", "created_at", "updated_at"]

    def get_is_builtin(self, obj: Tool) -> bool:
        return obj.organization_id is None

    def get_has_secret_headers(self, obj: Tool) -> bool:
        return bool(obj.secret_headers)


class ToolTestSerializer(serializers.Serializer):
    arguments = JSONObjectField(help_text="The tool's arguments, checked against its input schema.")


class ToolResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    duration_ms = serializers.FloatField()
    details = serializers.DictField()
