"""A model provider's page in a real browser: the product's labels, and "Test connection" pressed
against a real local model server, the models it lists shown in place (htmx), then a refused key."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import screenshot
from tests.factories import ModelProviderFactory

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-provider-secret"


def test_test_connection_lists_the_models_in_place(
    signed_in_page, live_server, org, httpserver, settings, watcher
):
    page = signed_in_page
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    provider = ModelProviderFactory(
        organization=org,
        name="Firm's Ollama",
        kind="openai_compatible",
        base_url=httpserver.url_for("/v1"),
        api_key=KEY,
        default_model="llama3.1:8b",
        timeout_seconds=5,
        max_retries=0,
    )
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 1700000000, "owned_by": "library"}
                for name in ("llama3.1:8b", "mistral-nemo:12b", "qwen2.5:14b")
            ],
        }
    )
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        {"error": {"message": "invalid api key", "type": "invalid_request_error"}}, status=401
    )

    page.goto(live_server.url + reverse("admin:agents_modelprovider_change", args=[provider.pk]))
    expect(page.get_by_label("Base URL")).to_have_value(httpserver.url_for("/v1"))
    expect(page.get_by_text("Currently:")).to_have_count(0)  # one plain URL box
    expect(page.get_by_label("Default provider for new agents")).to_be_visible()
    expect(page.get_by_role("button", name="Save and add another")).to_have_count(0)
    assert KEY not in page.content()

    url_before = page.url
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#pg-provider-test-result")
    expect(result).to_contain_text("3 models listed")
    expect(result.get_by_text("mistral-nemo:12b")).to_be_visible()
    expect(result).to_contain_text("the default model “llama3.1:8b” is among them")
    assert page.url == url_before  # swapped in place, no navigation
    expect(page.locator(".pg-provider-test .htmx-indicator")).to_have_css("opacity", "0")
    screenshot(page, "provider-test-connection")

    page.get_by_role("button", name="Test connection").click()
    expect(result).to_contain_text("The provider refused the API key (HTTP 401)")
    screenshot(page, "provider-test-connection-refused")
    assert KEY not in page.content()
    outcomes = list(
        AuditEvent.objects.filter(action="provider.test")
        .order_by("id")
        .values_list("after__outcome", flat=True)
    )
    assert outcomes == ["ok", "failed"]
    assert watcher.take() == []
