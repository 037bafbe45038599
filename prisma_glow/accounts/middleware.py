"""When second factors are required, a staff session that has not checked one reaches only enrolment."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse

from prisma_glow import factors

# Pages a signed-in but unverified session may still open: signing in and out, and enrolment.
OPEN_PAGES = ("admin:login", "admin:login_code", "admin:logout", "admin:account_security", "admin:jsi18n")


class SecondFactorRequiredMiddleware:
    """With ``PRISMA_GLOW_REQUIRE_MFA`` on, every admin page refuses a session whose user has not
    checked a second factor in it (``request.user.is_verified()``, django-otp):

    - a user without a factor is sent to ``admin:account_security`` to enrol (and comes back to the
      page they asked for);
    - a user with one (a session opened before factors were required, or by other means than the
      login form) is logged out and sent to the login page, which asks for the code.

    An HTMX request gets a 403 with ``HX-Redirect`` to that page. The API refuses such a session in
    its own authentication (``prisma_glow.api.authentication.SessionAuthentication``: 403
    ``mfa_required``). After ``SessionExpiryMiddleware`` and ``MessageMiddleware``. Off (development,
    tests) it costs nothing but a settings read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if factors.mfa_required():
            refused = self.refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def refuse(request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or factors.is_verified(request):
            return None
        admin_root = reverse("admin:index")
        path = request.path_info
        if not path.startswith(admin_root) or any(path == reverse(name) for name in OPEN_PAGES):
            return None
        wanted = request.get_full_path() if request.method == "GET" else admin_root
        target = second_factor_first(request, next_url=wanted)
        if request.headers.get("HX-Request") == "true":
            response = HttpResponse("Two-step sign-in is required.", status=403, content_type="text/plain")
            response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(target)


def second_factor_first(request, *, next_url: str, then: str = "continue") -> str:
    """Where a session that has not checked its second factor goes while factors are required, coming
    back to ``next_url`` after: a user with a factor signs in again with the code (this session ends:
    it was opened by a password alone), one without sets one up. Says so in a message."""
    if factors.has_factor(request.user):
        logout(request)
        messages.warning(request, f"Two-step sign-in is required: log in again with your code to {then}.")
        target = reverse("admin:login")
    else:
        messages.warning(request, f"Two-step sign-in is required: set it up, then {then}.")
        target = reverse("admin:account_security")
    return f"{target}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
