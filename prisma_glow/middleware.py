"""Middleware of the doors (the API and the staff UI) that the domain must not know about: how a write
that stayed busy (``prisma_glow.locking``) is answered, and how a session past its limits
(``prisma_glow.sessions``) is ended."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse

from prisma_glow import sessions
from prisma_glow.api.errors import error_body
from prisma_glow.exceptions import BUSY_MESSAGE
from prisma_glow.locking import is_busy

logger = logging.getLogger("prisma_glow.locking")


class BusyMiddleware:
    """A write that stayed busy (``is_busy``) is not a server error.

    Under ``/api/`` (outside DRF's exception handler, which answers it itself): the JSON 503 ``busy``.
    Elsewhere (the admin, whose change forms run their services inside the admin's own transaction,
    so that the service cannot retry): the message, shown on the page the user came from — a form
    post is redirected back to its page (303), an HTMX request gets a 503 that reloads the page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_busy(exception):
            return None
        logger.warning("Busy database on %s %s: %s", request.method, request.path, exception)
        if request.path_info.startswith("/api/"):
            response = JsonResponse(error_body(503, "busy", BUSY_MESSAGE), status=503)
            response["Retry-After"] = "1"
            return response
        if request.method in ("GET", "HEAD"):
            response = HttpResponse(BUSY_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
            response["Retry-After"] = "1"
            return response
        messages.error(request, BUSY_MESSAGE, fail_silently=True)
        if getattr(request, "htmx", False):
            response = HttpResponse(BUSY_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
            response["Retry-After"] = "1"
            response["HX-Refresh"] = "true"  # reload the page, which shows the message
            return response
        response = HttpResponseRedirect(request.get_full_path())
        response.status_code = 303  # back to the form, as a GET
        return response


class SessionExpiryMiddleware:
    """Ends a signed-in session past its idle or absolute limit, and says so.

    After ``AuthenticationMiddleware`` and ``MessageMiddleware``: the expired session is flushed
    (a new, empty one), ``request.user`` becomes anonymous, and the request goes on — the admin
    redirects to its login page, which shows the message; an HTMX request gets a 401 that reloads the
    page (``HX-Refresh``). Under ``/api/`` a request without an
    ``Authorization`` header is answered 401 ``session_expired`` (a request with one is the API key's
    business, whatever stale cookie it carries).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            now = sessions.now_seconds()
            reason = sessions.expired_reason(session, now)
            if reason is not None:
                session.flush()
                request.user = AnonymousUser()
                if request.path_info.startswith("/api/") and not request.headers.get("Authorization"):
                    response = JsonResponse(error_body(401, "session_expired", reason), status=401)
                    response["WWW-Authenticate"] = "Api-Key"
                    return response
                messages.warning(request, reason, fail_silently=True)
                if request.headers.get("HX-Request") == "true":
                    # An HTMX fragment (or the console's stream) must not swap the login page into
                    # the page: the page reloads, the admin sends it to its login page with the reason.
                    response = HttpResponse(reason, status=401, content_type="text/plain; charset=utf-8")
                    response["HX-Refresh"] = "true"
                    return response
            else:
                if not isinstance(session.get(sessions.STARTED), int):
                    session[sessions.STARTED] = now
                last_seen = session.get(sessions.LAST_SEEN)
                if not isinstance(last_seen, int) or now - last_seen >= sessions.LAST_SEEN_RESOLUTION:
                    session[sessions.LAST_SEEN] = now
        return self.get_response(request)
