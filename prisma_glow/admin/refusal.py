"""Refusals in the staff UI: a page of the admin's own layout (status 403) with the reason and a way
back, never Django's bare "403 Forbidden".

``refusal_page`` is what a custom page returns when the policy says no; ``permission_denied`` is the
site's ``handler403`` (``prisma_glow/urls.py``): a ``PermissionDenied`` raised anywhere under
``/admin/`` (a ModelAdmin's permission check, ``admin_require``…) is answered with the same page,
other paths with Django's default.
"""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

DEFAULT_REASON = "Your role in this organisation does not allow this page."


def refusal_page(request, reason: str, *, model_admin=None, status: int = 403):
    """A refused operation as a page of the admin, with the reason and links back."""
    back = request.META.get("HTTP_REFERER", "")
    if back == request.build_absolute_uri() or not url_has_allowed_host_and_scheme(
        back, {request.get_host()}, request.is_secure()
    ):
        back = ""
    context = {
        **admin.site.each_context(request),
        "title": "Not allowed",
        "reason": reason or DEFAULT_REASON,
        "back_url": back,
    }
    if model_admin is not None:
        context["opts"] = model_admin.opts
        context["app_label"] = model_admin.opts.app_label
    return TemplateResponse(request, "admin/pg/refused.html", context, status=status)


def permission_denied(request, exception=None):
    """``handler403``: the admin's refusal page for signed-in staff under ``/admin/``."""
    user = getattr(request, "user", None)
    in_admin = request.path.startswith(reverse("admin:index"))
    if in_admin and user is not None and user.is_active and user.is_staff:
        reason = str(exception) if exception is not None and str(exception) else DEFAULT_REASON
        response = refusal_page(request, reason)
        return response.render()
    return defaults.permission_denied(request, exception)
