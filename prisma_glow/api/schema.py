"""drf-spectacular extensions: the API-key scheme in the OpenAPI document."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
