"""Refusals in the staff UI: a page of the admin's own layout (status 403) with the reason and a way
back, never Django's bare "403 Forbidden".

``refusal_page`` is what a custom page returns when the policy says no; ``permission_denied`` is the
site's ``handler403`` (``prisma_glow/urls.py``): a ``PermissionDenied`` raised anywhere under
``/admin/`` (a ModelAdmin's permission check, ``admin_require``…) is answered with the same page,
other paths with Django's default. ``bad_request`` (``handler400``) does the same for a form the
server would not read — larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` or with too many fields — so a
person who pasted too much is told what happened and what to do, not shown "Bad Request (400)".
``csrf_failure`` (``CSRF_FAILURE_VIEW``) answers a form that failed the CSRF check (open too long,
or from another sign-in) in the same way.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.csrf import csrf_failure as default_csrf_failure

DEFAULT_REASON = "Your role in this organisation does not allow this page."


def refusal_page(
    request, reason: str, *, model_admin=None, status: int = 403, heading: str = "You cannot do this"
):
    """A refused operation as a page of the admin, with the reason and links back."""
    back = request.META.get("HTTP_REFERER", "")
    if back == request.build_absolute_uri() or not url_has_allowed_host_and_scheme(
        back, {request.get_host()}, request.is_secure()
    ):
        back = ""
    context = {
        **admin.site.each_context(request),
        "title": "Not allowed" if status == 403 else "Not sent",
        "heading": heading,
        "reason": reason or DEFAULT_REASON,
        "back_url": back,
    }
    if model_admin is not None:
        context["opts"] = model_admin.opts
        context["app_label"] = model_admin.opts.app_label
    return TemplateResponse(request, "admin/pg/refused.html", context, status=status)


def permission_denied(request, exception=None):
    """``handler403``: the admin's refusal page for signed-in staff under ``/admin/``."""
    if _for_staff_in_admin(request):
        reason = str(exception) if exception is not None and str(exception) else DEFAULT_REASON
        response = refusal_page(request, reason)
        return response.render()
    return defaults.permission_denied(request, exception)


def _for_staff_in_admin(request) -> bool:
    user = getattr(request, "user", None)
    return (
        request.path.startswith(reverse("admin:index"))
        and user is not None
        and user.is_active
        and user.is_staff
    )


def bad_request(request, exception=None):
    """``handler400``: under ``/admin/``, a form too large or with too many fields is answered in
    the admin's layout with what to do; anything else, and other paths, with Django's default."""
    if _for_staff_in_admin(request) and isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
            reason = (
                f"The form sent more than {limit:g} MB of text, the most a page accepts, so nothing was "
                "saved. Send less at once — a long text is best uploaded as a file (a knowledge base takes "
                "files up to its own, larger limit)."
            )
        else:
            reason = (
                f"The form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields, the most a page "
                "accepts, so nothing was saved. Select fewer items at once."
            )
        return refusal_page(request, reason, status=400, heading="The form was too large").render()
    return defaults.bad_request(request, exception)


CSRF_REASON = (
    "This form could not be accepted: it was open too long, or sent from another sign-in (you signed "
    "out and in again, or in another tab, since it was shown). Nothing was saved. Reload the page and "
    "try again."
)


def csrf_failure(request, reason: str = ""):
    """``CSRF_FAILURE_VIEW``: under ``/admin/``, a signed-in staff user whose form failed Django's CSRF
    check is told why in the admin's layout, with a way back (403); elsewhere Django's default."""
    if _for_staff_in_admin(request):
        response = refusal_page(request, CSRF_REASON, heading="The form has expired")
        return response.render()
    return default_csrf_failure(request, reason)
