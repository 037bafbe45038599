"""The address of the request being served: the one way a client's address reaches an audit event.

Services take no address: ``audit_record`` reads it here, whichever door (API, admin page) called the
service. The middleware sets it for the length of the request; a streamed agent run reads it when the
stream is created (its events are produced after the view returned). Work done outside a request (the
task worker, management commands) records none.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar

current_ip: ContextVar[str | None] = ContextVar("prisma_glow_audit_ip", default=None)


def request_ip(request) -> str | None:
    """The client's address for audit events (``REMOTE_ADDR``; a proxy must set it, e.g. gunicorn's
    ``--forwarded-allow-ips``), or None when it is not a valid IP address."""
    value = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


class AuditRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_ip.set(request_ip(request))
        try:
            return self.get_response(request)
        finally:
            current_ip.reset(token)
