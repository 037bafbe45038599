"""drf-spectacular customisation: the API-key scheme and the shared error responses.

``AutoSchema`` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) adds the ``Error`` component to every
operation for each status it can answer (400, 401, 403, 404, 429; 409 on writes; 413 and 415 where
there is a body), so no view declares them by hand.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
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


# --- Errors in every operation -----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one shape of every API error."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(
        help_text="A stable machine-readable code: `invalid`, `parse_error`, `not_authenticated`, "
        "`authentication_failed`, `permission_denied`, `not_found`, `conflict`, `throttled`…"
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
        "message": "This API key lacks the 'write' scope needed here.",
        "errors": {},
    },
    "404": {"status": 404, "code": "not_found", "message": "Not found.", "errors": {}},
    "409": {
        "status": 409,
        "code": "conflict",
        "message": "This object is still in use and cannot be deleted.",
        "errors": {},
    },
    "429": {
        "status": 429,
        "code": "throttled",
        "message": "Request was throttled. Expected available in 12 seconds.",
        "errors": {},
    },
}
ALWAYS = ("400", "401", "403", "404", "429")
WITH_BODY = ("409", "413", "415")


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, declaring the shared error responses on every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = list(ALWAYS)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += ["409"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        for code in codes:
            if code in responses:
                continue
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code in ERROR_EXAMPLES:
                for content in response.get("content", {}).values():
                    content["examples"] = {
                        "Error": {"value": ERROR_EXAMPLES[code], "summary": ERROR_DESCRIPTIONS[code][:60]}
                    }
            if code == "429":
                response["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                }
            responses[code] = response
        return responses


__all__ = ["APIKeyAuthenticationScheme", "AutoSchema", "ErrorSerializer"]
