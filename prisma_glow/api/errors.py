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
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from prisma_glow.exceptions import BUSY_MESSAGE, BudgetExceeded, ConflictError
from prisma_glow.locking import is_busy
from prisma_glow.uniqueness import unique_violation


class Conflict(exceptions.APIException):
    """The request is valid but clashes with the current state (in use, duplicate, wrong status)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the limit."
    default_code = "request_too_large"


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


# Validation errors whose every message has one of these codes are not "bad input" but a reference
# to something the caller cannot see (404) or a clash with existing data (409).
NOT_FOUND_CODES = {"does_not_exist"}
# "conflict": a valid body that clashes with the stored object (an assignment's target cannot change).
CONFLICT_CODES = {"unique", "unique_together", "conflict"}


def _leaf_codes(codes) -> set[str]:
    if isinstance(codes, dict):
        return {c for v in codes.values() for c in _leaf_codes(v)}
    if isinstance(codes, (list, tuple)):
        return {c for v in codes for c in _leaf_codes(v)}
    return {str(codes)}


def _reclassify(exc: exceptions.ValidationError):
    """A reference to an unknown (or another organisation's) object is a 404; a duplicate a 409."""
    codes = _leaf_codes(exc.get_codes())
    if codes and codes <= NOT_FOUND_CODES:
        return exceptions.NotFound, "not_found"
    if codes and codes <= CONFLICT_CODES:
        return Conflict, "conflict"
    return None, None


def exception_handler(exc, context):
    """DRF exception handler producing the shared error shape for every error, Django's included."""
    if is_busy(exc):
        # A deadlock that outlasted the service's retries (BusyError), or one raised where no
        # service owned the transaction to retry it: try again, not a server error.
        response = error_response(503, "busy", BUSY_MESSAGE)
        response["Retry-After"] = "1"
        return response
    if isinstance(exc, BudgetExceeded):
        # A budget cannot cover the run (agents.runtime.budgets): wait until its period ends.
        response = error_response(429, "budget_exceeded", exc.messages[0][:2000])
        response["Retry-After"] = str(exc.retry_after(timezone.now()))
        return response
    if isinstance(exc, ConflictError):
        # A domain refusal (prisma_glow.exceptions): the request clashes with the current state.
        detail = _field_errors(get_error_detail(exc))
        # One message once, though a duplicate may name several fields (metric and period).
        message = "; ".join(dict.fromkeys(_flatten(detail)))[:2000]
        response = error_response(409, "conflict", message, detail)
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=get_error_detail(exc))
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = Conflict(
            "This object is still in use and cannot be deleted"
            f" ({len(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects)}"
            " dependent record(s)). Deactivate or deprecate it instead."
        )
    elif isinstance(exc, IntegrityError):
        if (violation := unique_violation(exc)) is not None:
            # A duplicate that raced past validation (two concurrent creates): the same 409, naming
            # the same field, as validation gives (prisma_glow.uniqueness).
            return error_response(409, "conflict", violation.message[:2000], violation.errors())
        exc = Conflict("The change conflicts with existing data (a duplicate or a missing reference).")
    elif isinstance(exc, DataError):
        # A value the database cannot hold (out of range, too long…) that validation let through.
        exc = exceptions.ValidationError(
            {"non_field_errors": ["A value is out of the range the database can store."]}
        )
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
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        status_class, code = _reclassify(exc)
        if status_class is not None:
            response.status_code = status_class.status_code
            response.data = error_body(response.status_code, code, _message(exc, errors), errors)
            return response
    else:
        # A refusal about one field (``PermissionDenied({"search": [...]})``) names it too.
        errors = _field_errors(exc.detail) if isinstance(exc.detail, dict) else {}
    response.data = error_body(response.status_code, _code(exc), _message(exc, errors), errors)
    return response


def error_response(status_code: int, code: str, message: str, errors: dict | None = None) -> Response:
    return Response(error_body(status_code, code, message, errors), status=status_code)
