"""Guards in front of ``/api/``: every error there is JSON in the shared shape.

Before the view: a NUL character in the path, the query string or a header, a malformed
``Content-Length`` (400), or a body larger than the limit (413) is answered at once, without reading
the body. After the view: Django's own HTML 404/405/500 pages under ``/api/`` become JSON errors,
and every response, errors and new keys' secrets included, gets ``Cache-Control: no-store``; every
response to a request an API key authenticated, errors included, carries the key's expiry
(``X-API-Key-Expires-At``) and, near it, ``X-API-Key-Expiry-Warning``.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

from prisma_glow.api.authentication import api_key_headers
from prisma_glow.api.errors import error_body
from prisma_glow.tenancy.models import APIKey

logger = logging.getLogger("prisma_glow.api")

API_PREFIX = "/api/"


def max_body_bytes(content_type: str) -> int:
    """The largest body accepted: ``DATA_UPLOAD_MAX_MEMORY_SIZE`` for JSON and forms; for multipart
    uploads, the document size limit plus that much for the other fields."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**31
    if content_type.lower().startswith("multipart/"):
        limit += getattr(settings, "KNOWLEDGE_MAX_UPLOAD_BYTES", 0)
    return int(limit)


def json_error(status: int, code: str, message: str, errors: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, code, message, errors), status=status)


def _has_nul(request) -> str | None:
    if "\x00" in request.path or b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
        return "The URL must not contain the NUL character."
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return f"The {name[5:].replace('_', '-').title()} header must not contain the NUL character."
    return None


class APIGuardMiddleware:
    """Rejects malformed requests to ``/api/`` early and keeps every error there in JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        rejected = self.check(request)
        response = rejected if rejected is not None else self.jsonify(request, self.get_response(request))
        key = getattr(request, "auth", None)  # set by DRF when an API key authenticated the request
        if isinstance(key, APIKey):
            for header, value in api_key_headers(key).items():
                response[header] = value
        # Every API answer is one caller's data (a new key's secret among them) or an error about their
        # request: no browser, proxy or CDN may keep a copy.
        add_never_cache_headers(response)
        return response

    def check(self, request):
        problem = _has_nul(request)
        if problem:
            return json_error(400, "invalid_request", problem)
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            return json_error(400, "invalid_request", "The Content-Length header is not a valid length.")
        limit = max_body_bytes(request.META.get("CONTENT_TYPE", ""))
        if length > limit:
            return json_error(
                413,
                "request_too_large",
                f"The request body ({length} bytes) exceeds the limit of {limit} bytes.",
            )
        return None

    def jsonify(self, request, response):
        """Django-level errors (no DRF view answered) come back as HTML: turn them into JSON.

        An error a DRF view rendered for ``Accept: text/event-stream`` (an ``error`` event) is answered
        in JSON with the same body, so that a streaming client gets the real reason (the field errors of
        a 400, the 404 of an unknown agent) in the API's one error shape, not a generic message."""
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        data = getattr(response, "data", None)
        if isinstance(data, dict) and {"status", "code", "message", "errors"} <= data.keys():
            converted = JsonResponse(data, status=response.status_code)
            for header in ("WWW-Authenticate", "Retry-After", "Allow"):
                if header in response:
                    converted[header] = response[header]
            return converted
        if response.status_code == 404:
            return json_error(404, "not_found", f"No API endpoint at {request.path[:200]}.")
        if response.status_code == 405:
            return json_error(405, "method_not_allowed", f"Method {request.method[:20]} not allowed.")
        if response.status_code == 413:
            return json_error(413, "request_too_large", "The request body is too large.")
        if response.status_code >= 500:
            return json_error(response.status_code, "server_error", "Internal server error.")
        if response.status_code == 400:
            return json_error(400, "invalid_request", "The request is malformed.")
        if response.status_code == 403:
            return json_error(403, "permission_denied", "Forbidden (CSRF check failed or access denied).")
        return response

    def process_exception(self, request, exception):
        """An unhandled exception under ``/api/`` is logged and answered with a JSON 500."""
        if not request.path_info.startswith(API_PREFIX):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return json_error(500, "server_error", "Internal server error.")
