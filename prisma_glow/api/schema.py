"""drf-spectacular customisation: the API-key scheme, the shared error responses, and request
schemas that say what ``prisma_glow.api.strict`` accepts (closed bodies, decimal strings or integers).

``AutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds the ``Error`` component to every
operation for each status it can answer (400, 401, 403, 404, 429; 409 and 503 on writes; 413 and 415
where there is a body), so no view declares them by hand.
"""

import math
from decimal import Decimal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import force_instance
from rest_framework import serializers


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "prisma_glow.api.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key pg_<prefix>.<secret>` — create keys in the admin or with "
            "`manage.py create_api_key`.",
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "prisma_glow.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        from django.conf import settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The admin's session (staff signed in); unsafe methods need the CSRF token.",
        }


# --- Errors in every operation -----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one shape of every API error."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(
        help_text="A stable machine-readable code: `invalid`, `parse_error`, `not_authenticated`, "
        "`authentication_failed`, `permission_denied`, `not_found`, `conflict`, `throttled`, `busy`…"
    )
    message = serializers.CharField(help_text="A sentence for people.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field (`non_field_errors` for the whole object); empty when no field is "
        "concerned.",
    )

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: malformed JSON, wrong types, or field errors listed in `errors`.",
    "401": "No credentials, or an API key that is unknown, expired, revoked or rotated out.",
    "403": "The caller's role or the key's scopes do not allow this operation.",
    "404": "No such object in the caller's organisation (another organisation's objects answer 404).",
    "405": "Method not allowed.",
    "409": "The request conflicts with the current state (a duplicate, an object in use, a last owner…).",
    "413": "The request body is larger than the limit.",
    "415": "Unsupported content type.",
    "429": "Rate limit exceeded; retry after the number of seconds in the `Retry-After` header.",
    "503": "Busy: concurrent changes to the organisation kept this one from being applied (nothing was "
    "changed); retry after the number of seconds in the `Retry-After` header.",
}
ERROR_EXAMPLES = {
    "400": {
        "status": 400,
        "code": "invalid",
        "message": "name: This field may not be blank.",
        "errors": {"name": ["This field may not be blank."]},
    },
    "401": {
        "status": 401,
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "errors": {},
    },
    "403": {
        "status": 403,
        "code": "permission_denied",
        "message": "This API key lacks the 'write' scope needed to change agents.",
        "errors": {},
    },
    "404": {"status": 404, "code": "not_found", "message": "Not found.", "errors": {}},
    "409": {
        "status": 409,
        "code": "conflict",
        "message": "A knowledge base with this name already exists in this organisation.",
        "errors": {"name": ["A knowledge base with this name already exists in this organisation."]},
    },
    "503": {
        "status": 503,
        "code": "busy",
        "message": "Other changes to this organisation were being saved at the same moment and this one "
        "could not be applied; nothing was changed. Try again in a moment.",
        "errors": {},
    },
    "429": {
        "status": 429,
        "code": "throttled",
        "message": "Request was throttled. Expected available in 12 seconds.",
        "errors": {},
    },
}
# A delete clashes with the rows that still use the object (here: tools.services.tool_delete), not a
# duplicate.
DELETE_CONFLICT_EXAMPLE = {
    "status": 409,
    "code": "conflict",
    "message": "The tool 'ECB exchange rate' is assigned to 2 agent(s); unassign it (or disable it) first.",
    "errors": {
        "non_field_errors": [
            "The tool 'ECB exchange rate' is assigned to 2 agent(s); unassign it (or disable it) first."
        ]
    },
}
ALWAYS = ("400", "401", "403", "404", "429")


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, declaring the shared error responses on every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = list(ALWAYS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += ["409", "503"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        for code, response in responses.items():
            # An error declared by a view with a description only still has the shared shape.
            if str(code).startswith(("4", "5")) and not response.get("content"):
                error = self._get_response_for_code(ErrorSerializer, str(code), direction=direction)
                response["content"] = error["content"]
        for code in codes:
            if code in responses:
                continue
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code in ERROR_EXAMPLES:
                example = ERROR_EXAMPLES[code]
                if code == "409" and self.method == "DELETE":
                    example = DELETE_CONFLICT_EXAMPLE
                for content in response.get("content", {}).values():
                    content["examples"] = {
                        "Error": {"value": example, "summary": ERROR_DESCRIPTIONS[code][:60]}
                    }
            if code in ("429", "503"):
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                }
            responses[code] = response
        for code, response in responses.items():
            # Errors are always the JSON error shape, whatever the success answer's media types (an
            # event stream, a file): APIGuardMiddleware converts the rest.
            content = response.get("content") or {}
            if str(code).startswith(("4", "5")) and "application/json" in content:
                response["content"] = {"application/json": content["application/json"]}
        return responses

    def map_parsers(self):
        """The API speaks JSON: requests are declared as JSON only, plus multipart where a file is
        uploaded. (Form encodings cannot express null, so declaring them would promise what a
        nullable field cannot receive; they are still parsed, and checked for NUL, at runtime.)"""
        media_types = super().map_parsers()
        if "application/json" not in media_types or self._uploads_file():
            return media_types
        return ["application/json"]

    def _uploads_file(self) -> bool:
        try:
            serializer = force_instance(self.get_request_serializer())
            fields = serializer.fields if isinstance(serializer, serializers.Serializer) else {}
        except Exception:  # a serializer that needs a real request: keep every media type
            return True
        return any(isinstance(f, serializers.FileField) for f in fields.values())

    def _map_basic_serializer(self, serializer, direction):
        content = super()._map_basic_serializer(serializer, direction)
        # Request bodies are closed: unknown fields are refused (prisma_glow.api.strict).
        if direction == "request" and not getattr(serializer, "allow_unknown_fields", False):
            content["additionalProperties"] = False
        # A rule between fields that the serializer states as JSON Schema alternatives (a tokens
        # budget's limit is a whole number), so that "schema-valid" still means "accepted".
        if direction == "request" and getattr(serializer, "request_schema_any_of", None):
            content["anyOf"] = serializer.request_schema_any_of
        return content

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        content = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.DecimalField)
            and isinstance(content, dict)
            and content.get("format") == "decimal"
            and "pattern" in content
        ):
            content["pattern"] = decimal_pattern(field)
        if isinstance(content, dict) and "example" not in content:
            example = sample_value(field, content)
            if example is not None:
                content["example"] = example
        if direction == "request" and isinstance(field, serializers.DecimalField):
            content = decimal_or_integer(field, content)
        return content


# JavaScript numbers (Swagger UI) lose whole numbers above 2**53 - 1: 9223372036854775807 shows as
# 9223372036854776000.
JS_SAFE_INTEGER = 2**53 - 1


def sample_value(field, content: dict):
    """A realistic example for a number whose generated sample would not be (Swagger UI builds one
    from the pattern or the bounds: "-0052975" for a cost, 9223372036854776000 for an ordinal), or
    None to leave the generated one."""
    if isinstance(field, serializers.DecimalField) and content.get("format") == "decimal":
        low = field.min_value if field.min_value is not None else Decimal(0)
        high = field.max_value
        value = Decimal("12.5")
        if field.max_whole_digits is not None and value >= 10**field.max_whole_digits:
            value = Decimal("0.5")
        value = max(Decimal(low), value if high is None else min(Decimal(high), value))
        places = field.decimal_places or 0
        return str(value.quantize(Decimal(1).scaleb(-places)))
    if content.get("type") == "integer" and content.get("maximum", 0) > JS_SAFE_INTEGER:
        return max(int(content.get("minimum", 1)), 1)
    return None


#: What stays on a request decimal's schema rather than moving into its string alternative.
_ANNOTATIONS = ("readOnly", "writeOnly", "nullable", "description", "title", "default", "example")


def integer_bounds(field: serializers.DecimalField) -> tuple[int | None, int | None] | None:
    """The whole numbers ``field`` accepts as (minimum, maximum), either None when unbounded; None
    when it accepts none (no whole digits allowed, or bounds with no whole number between them)."""
    low = math.ceil(field.min_value) if field.min_value is not None else None
    high = math.floor(field.max_value) if field.max_value is not None else None
    whole = field.max_whole_digits
    if whole is not None:
        if whole < 1:  # DRF counts 0 as one whole digit
            return None
        largest = 10**whole - 1
        low = -largest if low is None else max(low, -largest)
        high = largest if high is None else min(high, largest)
    if low is not None and high is not None and low > high:
        return None
    return low, high


def decimal_or_integer(field: serializers.DecimalField, content: dict) -> dict:
    """A request decimal is a string (``"0.20"``) or a JSON integer (``2000000``), which is exact
    (``prisma_glow.api.strict`` refuses other JSON numbers): ``oneOf`` the string schema and an
    integer within the field's digits and bounds. Answers keep the string alone."""
    if content.get("format") != "decimal" or content.get("type") != "string":
        return content
    bounds = integer_bounds(field)
    if bounds is None:
        return content
    integer: dict = {"type": "integer"}
    if bounds[0] is not None:
        integer["minimum"] = bounds[0]
    if bounds[1] is not None:
        integer["maximum"] = bounds[1]
    string = {key: value for key, value in content.items() if key not in _ANNOTATIONS}
    wrapped = {key: value for key, value in content.items() if key in _ANNOTATIONS}
    return {"oneOf": [string, integer], **wrapped}


def decimal_pattern(field: serializers.DecimalField) -> str:
    """drf-spectacular's pattern for a decimal string also matches "", "-" and "."; this one needs a
    digit, and no minus sign when the field's minimum is not negative."""
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    places = field.decimal_places
    whole = field.max_whole_digits
    maximum = field.max_value
    if not sign and maximum is not None and maximum == int(maximum) and 0 < maximum <= 100 and places:
        # A small whole maximum (a temperature of 0–2…): spell out the whole parts below it.
        below = "|".join(str(i) for i in range(int(maximum)))
        return (
            rf"^(?:(?:{below})(?:\.\d{{0,{places}}})?|{int(maximum)}(?:\.0{{0,{places}}})?"
            rf"|\.\d{{1,{places}}})$"
        )
    fraction = rf"(?:\.\d{{0,{places}}})?" if places else ""
    if whole == 0:
        return rf"^{sign}0?\.\d{{1,{places}}}$"
    if field.min_value is not None and field.min_value > 0:
        # More than zero (a budget's limit): a non-zero digit, in the whole part or the last decimal.
        # Leading zeros do not count towards the digits.
        nonzero = rf"0*[1-9]\d{{0,{whole - 1}}}{fraction}"
        if places:
            # Below one: the first non-zero decimal at each position k, then up to places-1-k digits.
            firsts = "|".join("0" * k + rf"[1-9]\d{{0,{places - 1 - k}}}" for k in range(places))
            nonzero += rf"|0*\.(?:{firsts})"
        return rf"^(?:{nonzero})$"
    alternatives = rf"\d{{1,{whole}}}{fraction}" + (rf"|\.\d{{1,{places}}}" if places else "")
    return rf"^{sign}(?:{alternatives})$"


# --- Strings the database can store ---------------------------------------------------------------

NO_NUL_PATTERN = "^[^\\u0000]*$"
# Required text: DRF strips surrounding whitespace, so it must hold something else too.
NON_BLANK_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def _forbid_nul(schema, components: dict, seen: set) -> None:
    """Add the no-NUL pattern to every free-text string reachable from ``schema``."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in components:
            seen.add(name)
            _forbid_nul(components[name], components, seen)
        return
    if schema.get("type") == "string" and not ({"enum", "pattern", "format", "const"} & set(schema)):
        schema["pattern"] = NON_BLANK_PATTERN if schema.get("minLength", 0) >= 1 else NO_NUL_PATTERN
    for key in ("properties", "patternProperties"):
        for child in (schema.get(key) or {}).values():
            _forbid_nul(child, components, seen)
    for key in ("items", "additionalProperties", "not"):
        _forbid_nul(schema.get(key), components, seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for child in schema.get(key) or []:
            _forbid_nul(child, components, seen)


def postprocess_forbid_nul(result, generator, request, public):
    """drf-spectacular postprocessing hook: request strings (bodies and parameters) may not hold NUL,
    which PostgreSQL cannot store; the API rejects it with 400 and the schema says so."""
    components = result.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _forbid_nul(parameter.get("schema"), components, seen)
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                _forbid_nul(media.get("schema"), components, seen)
    return result


__all__ = [
    "APIKeyAuthenticationScheme",
    "AutoSchema",
    "ErrorSerializer",
    "SessionAuthenticationScheme",
    "postprocess_forbid_nul",
]
