"""Pagination: page numbers for small resources, cursors for large growing tables."""

from rest_framework.pagination import CursorPagination, PageNumberPagination

MAX_PAGE_SIZE = 100


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M`` (M at most 100)."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CreatedCursorPagination(CursorPagination):
    """Newest first, stable under inserts and without a COUNT; for executions and audit events."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at", "-id")


class IdCursorPagination(CursorPagination):
    """Newest first by id (monotonic), for append-only logs without ``created_at``."""

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"
