"""Helpers for tests of streamed (Server-Sent Events) responses."""

from __future__ import annotations


def close_unread(response) -> None:
    """Close ``response`` without reading it, as a WSGI server does when the client is gone (and as
    Django's test client closes responses: without closing the test's database connection)."""
    from django.core.signals import request_finished
    from django.db import close_old_connections

    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
