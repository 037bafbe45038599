"""Step-up in the staff UI: a sensitive POST asks for a code, then carries on with what was posted.

``prisma_glow.policy.decide`` refuses a sensitive operation to a person who has not checked a second
factor within ``PRISMA_GLOW_STEP_UP_MINUTES`` (code ``step_up_required``). At the door, ``gate``
turns that refusal into a page of the admin asking for a code, which carries every field of the
original POST as hidden inputs (with the CSRF token) and posts back to the same URL. On that second
POST the code is checked (``prisma_glow.factors.step_up``: throttled, one use, a new session key,
audited) and, when right, the door goes on with the original action in the same request: nothing to
type again. A user with a passkey may use it instead of a code: the page carries the passkey's
challenge (``prisma_glow.accounts.passkeys``), ``admin_ui/passkeys.js`` puts the browser's answer in a
hidden field of the same form, and the answer is verified here before anything goes on. A wrong code shows the page again with the reason; nothing is done. A user with no
factor (possible only when factors are required) is sent to enrol one (Account security).

Doors: ``OrganizationScopedAdmin`` (``prisma_glow.admin.base``) asks ``gate`` for every add, change,
delete and bulk action; custom pages put ``requires_step_up(operation)`` on their view.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import django_otp
from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst

from prisma_glow import factors, policy
from prisma_glow.accounts import passkeys
from prisma_glow.admin.refusal import refusal_page
from prisma_glow.admin.scoping import get_admin_access

# The code typed on the page; the other posted fields are the original request's, carried over.
CODE_FIELD = "_pg_step_up_code"
# The browser's answer to the passkey challenge the page carries (JSON), in place of a code.
PASSKEY_FIELD = "_pg_step_up_passkey"
NOT_CARRIED = {"csrfmiddlewaretoken", CODE_FIELD, PASSKEY_FIELD}

MESSAGES = {
    "wrong": "This code is wrong, expired or already used: type the code your authenticator app shows "
    "now (or an unused backup code). Nothing was done.",
    "throttled": "Too many wrong codes: wait a little before trying again. Nothing was done.",
    "no_factor": "You have no second factor to check yet: enrol one first.",
    "wrong_passkey": "That passkey was not accepted (or the request was already used): use a passkey "
    "registered for your account, or type a code. Nothing was done.",
}


def account_security_url() -> str | None:
    """The page where a user enrols a second factor, when the site has it (by name, lazily)."""
    try:
        return reverse("admin:account_security")
    except NoReverseMatch:
        return None


def gate(request, operation: str, obj=None, *, model_admin=None, **context):
    """None when ``request`` may go on with ``operation``: the policy allows it or refuses it for
    another reason (the door answers that refusal as it always does), or the posted code was right
    (recorded). Otherwise the code page: asked for the first time, or again after a wrong code."""
    if operation not in policy.STEP_UP:
        return None  # never sensitive (or no operation at all: a page nobody may write)
    decision = policy.decide(get_admin_access(request), operation, obj, **context)
    if decision or decision.code != policy.STEP_UP_REQUIRED:
        return None
    error = None
    if request.POST.get(PASSKEY_FIELD):
        result = factors.step_up(
            request, "", door="admin", operation=operation, passkey=request.POST[PASSKEY_FIELD]
        )
        if result:
            return None
        error = MESSAGES[result.outcome]
    elif CODE_FIELD in request.POST:
        result = factors.step_up(request, request.POST[CODE_FIELD], door="admin", operation=operation)
        if result:
            return None
        error = MESSAGES[result.outcome]
    return code_page(request, operation, error=error, model_admin=model_admin)


def code_page(request, operation: str, *, error: str | None = None, model_admin=None):
    """The page asking for a code, with the original POST carried in hidden inputs."""
    from prisma_glow.admin.base import render_admin_page

    carried = [
        (name, value) for name, values in request.POST.lists() if name not in NOT_CARRIED for value in values
    ]
    has_device = any(django_otp.devices_for_user(request.user, confirmed=True))
    has_passkey = passkeys.has_passkey(request.user)
    context = {
        "operation": operation,
        "summary": capfirst(policy.OPERATIONS[operation].summary),
        "carried": carried,
        "action": request.get_full_path(),
        "code_field": CODE_FIELD,
        "error": error,
        "has_device": has_device,
        "enrol_url": account_security_url(),
        "back_url": _back_url(request),
        "minutes": settings.PRISMA_GLOW_STEP_UP_MINUTES,
        "passkey_field": PASSKEY_FIELD,
        "passkey_options": passkeys.authentication_options(request, user=request.user, purpose="step_up"),
        "passkey_unavailable": passkeys.unavailable_reason(request) if has_passkey else None,
    }
    response = render_admin_page(
        request,
        "admin/pg/step_up.html",
        context,
        title="Confirm with your second factor",
        model_admin=model_admin,
    )
    response["Cache-Control"] = "no-store"
    return response


def _back_url(request) -> str:
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return reverse("admin:index")


def requires_step_up(operation: str | Callable[..., str]):
    """For a custom page's view (a function or a method): a POST of ``operation`` (a name, or a
    function of the URL's arguments giving one, e.g. ``lambda transition, **_: f"agent.{transition}"``)
    is asked of the policy first: refused for the role or scope, the admin's refusal page (403, in
    its layout, with a way back); sensitive without a fresh factor, ``gate``'s code page. The view
    still asks the policy itself (``require``), with the object where rules depend on it."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            request = next(a for a in args if isinstance(a, HttpRequest))
            if request.method == "POST":
                name = operation(**kwargs) if callable(operation) else operation
                if name in policy.OPERATIONS:
                    owner = args[0] if args[0] is not request else None  # a ModelAdmin or its pages
                    model_admin = getattr(owner, "admin", owner)
                    if not hasattr(model_admin, "opts"):
                        model_admin = None
                    decision = policy.decide(get_admin_access(request), name)
                    if not decision and decision.code != policy.STEP_UP_REQUIRED:
                        return refusal_page(request, decision.reason, model_admin=model_admin)
                    page = gate(request, name, model_admin=model_admin)
                    if page is not None:
                        return page
            return view(*args, **kwargs)

        return wrapped

    return decorator
