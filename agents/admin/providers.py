""" "Test connection" on a model provider's page: a POST that asks the saved provider for its models
(or a one-token answer) through ``agents.services.provider_test_connection`` and shows what came back.

HTMX swaps the result panel in place; without JavaScript the same POST answers with a message and a
redirect to the provider's page. Whoever may change the provider may test it (``model_provider.test``);
presses are counted per user (``PROVIDER_TEST_RATE_LIMIT``), since each one calls the provider.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from agents import services
from agents.models import ModelProvider
from agents.runtime.providers import ConnectionCheck
from prisma_glow.admin.htmx import is_htmx
from prisma_glow.admin.scoping import scoped_get
from prisma_glow.api.throttling import consume
from prisma_glow.display import format_duration_ms

RATE_GROUP = "admin-provider-test"
RESULT_TEMPLATE = "admin/agents/modelprovider/test_result.html"


def describe(check: ConnectionCheck) -> str:
    """One line for the no-JS message: what the test found, or the error."""
    took = format_duration_ms(check.latency_ms)
    if not check.ok:
        return f"Connection test failed after {took}: {check.error}"
    if check.method == "models":
        shown = ", ".join(check.models[:10]) + ("…" if len(check.models) > 10 else "")
        return f"Connected in {took}: {len(check.models)} model(s) listed" + (
            f" ({shown})." if shown else "."
        )
    if check.method == "completion":
        return f"Connected in {took}: {check.models[0]} answered a one-token request."
    return f"The offline engine answered in {took} (it runs inside Prisma Glow: no network, no key)."


def provider_test(model_admin, request, object_id):
    """Test the saved provider ``object_id`` (another organisation's: 404) and show the result; POST
    only (``require_POST`` where it is routed)."""
    model_admin.require(request, "model_provider.test")
    provider = scoped_get(ModelProvider.objects.select_related("organization"), request, pk=object_id)
    change_url = reverse("admin:agents_modelprovider_change", args=[provider.pk])
    wait = consume(request, group=RATE_GROUP, rate=settings.PROVIDER_TEST_RATE_LIMIT or None)
    if wait is not None:
        # Nothing is called and nothing audited: the press is refused before the provider is asked.
        throttled = f"Too many connection tests: wait {wait} s before testing again."
        if not is_htmx(request):
            model_admin.message_user(request, throttled, messages.WARNING)
            return HttpResponseRedirect(change_url)
        # htmx swaps only 2xx answers: the refusal is the panel's content (Retry-After says when).
        response = TemplateResponse(request, RESULT_TEMPLATE, {"provider": provider, "throttled": throttled})
        response["Retry-After"] = str(wait)
        return response
    check = services.provider_test_connection(provider=provider, actor=request.user)
    if not is_htmx(request):
        model_admin.message_user(request, describe(check), messages.SUCCESS if check.ok else messages.ERROR)
        return HttpResponseRedirect(change_url)
    return TemplateResponse(request, RESULT_TEMPLATE, {"provider": provider, "check": check})
