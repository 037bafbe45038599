"""Pagination: page numbers for small resources, cursors for large growing tables.

Both are strict: a ``page`` or ``page_size`` that is not a whole number in range is a 400 (DRF would
silently fall back to the defaults), and the schema declares the ranges.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 100
PAGE_MAX = 2**31 - 1


def _strict_int(request, name: str, *, maximum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise exceptions.ValidationError({name: [f"Give a whole number from 1 to {maximum}."]})
    return int(raw)


def _declare_ranges(parameters: list[dict]) -> list[dict]:
    for parameter in parameters:
        if parameter["name"] == "page_size":
            parameter["schema"].update({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE})
            parameter["description"] = f"Rows per page (1–{MAX_PAGE_SIZE}; default 25)."
        elif parameter["name"] == "page":
            parameter["schema"].update({"type": "integer", "minimum": 1, "maximum": PAGE_MAX})
    return parameters


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M`` (M at most 100); a page past the end is a 404."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return _strict_int(request, self.page_size_query_param, maximum=self.max_page_size) or self.page_size

    def get_page_number(self, request, paginator):
        number = _strict_int(request, self.page_query_param, maximum=PAGE_MAX)
        return number or 1

    def get_schema_operation_parameters(self, view):
        return _declare_ranges(super().get_schema_operation_parameters(view))


class CreatedCursorPagination(CursorPagination):
    """Newest first, stable under inserts and without a COUNT; for executions and audit events."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        return _strict_int(request, self.page_size_query_param, maximum=self.max_page_size) or self.page_size

    def get_schema_operation_parameters(self, view):
        return _declare_ranges(super().get_schema_operation_parameters(view))


class IdCursorPagination(CreatedCursorPagination):
    """Newest first by id (monotonic), for append-only logs without ``created_at``."""

    ordering = "-id"
