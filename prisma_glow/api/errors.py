"""One JSON shape for every API error::

    {"status": 400, "code": "invalid", "message": "Name: This field is required.",
     "errors": {"name": ["This field is required."]}}

``errors`` maps fields to messages (``non_field_errors`` for the object as a whole) and is empty
for errors that concern no field.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    """The request is valid but clashes with the current state (in use, duplicate, wrong status)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "request_too_large"


class ConflictError(DjangoValidationError):
    """Raised by services when a valid request clashes with the current state (last owner, already
    revoked, in use…). The API answers 409; admin forms show it like any validation error."""


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for v in detail.values() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for v in detail for m in _flatten(v)]
    return [str(detail)]


def _field_errors(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": _flatten(detail)}
    return {}


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return (
        getattr(exc, "default_code", "error")
        if not isinstance(exc, exceptions.ValidationError)
        else "invalid"
    )


def error_body(status_code: int, code: str, message: str, errors: dict | None = None) -> dict:
    return {"status": status_code, "code": code, "message": message, "errors": errors or {}}


def _message(exc: exceptions.APIException, errors: dict[str, list[str]]) -> str:
    if isinstance(exc, exceptions.ValidationError) and errors:
        parts = []
        for field, messages in errors.items():
            label = "" if field == "non_field_errors" else f"{field}: "
            parts.append(label + " ".join(messages))
        return "; ".join(parts)[:2000]
    return str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "; ".join(_flatten(exc.detail))


def exception_handler(exc, context):
    """DRF exception handler producing the shared error shape for every error, Django's included."""
    conflict_errors: dict[str, list[str]] = {}
    if isinstance(exc, ConflictError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        conflict_errors = _field_errors(detail)
        exc = Conflict("; ".join(_flatten(detail)))
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = Conflict(
            "This object is still in use and cannot be deleted"
            f" ({len(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects)}"
            " dependent record(s)). Deactivate or deprecate it instead."
        )
    elif isinstance(exc, IntegrityError):
        exc = Conflict("The change conflicts with existing data (a duplicate or a missing reference).")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(f"Malformed request: {str(exc)[:200]}")

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    errors = _field_errors(exc.detail) if isinstance(exc, exceptions.ValidationError) else conflict_errors
    response.data = error_body(response.status_code, _code(exc), _message(exc, errors), errors)
    return response


def error_response(status_code: int, code: str, message: str, errors: dict | None = None) -> Response:
    return Response(error_body(status_code, code, message, errors), status=status_code)
