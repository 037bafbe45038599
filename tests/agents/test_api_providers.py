"""``/api/v1/model-providers/``: admin-only writes, the API key write-only and never returned."""

from __future__ import annotations

import pytest

from agents.models import ModelProvider
from prisma_glow.audit.models import AuditEvent
from tests.factories import AgentFactory, ModelProviderFactory
from tests.support.api import APIResourceTests, assert_error, results

pytestmark = pytest.mark.django_db

SECRET = "sk-test-very-secret-4242"


@pytest.fixture(autouse=True)
def local_ollama_allowed(settings):
    """The local model server of ``create_data`` is named by the providers' allow-list."""
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1:11434"]


class TestModelProviderAPI(APIResourceTests):
    model = ModelProvider
    factory = ModelProviderFactory
    url = "/api/v1/model-providers/"
    create_data = {
        "name": "Local Ollama",
        "kind": "openai_compatible",
        "base_url": "http://127.0.0.1:11434/v1",
        "default_model": "llama3.1",
        "api_key": SECRET,
    }
    update_data = {"timeout_seconds": 20, "api_key": "sk-replaced"}
    invalid_data = {"name": "", "kind": "magic", "timeout_seconds": 0}
    write_only_fields = ("api_key",)
    write_role = "admin"
    write_scope = "admin"

    def make_object(self, organization, parent=None):
        return ModelProviderFactory(organization=organization, api_key=SECRET)


def test_api_key_is_never_in_any_response_or_audit_event(org, admin_client_api):
    response = admin_client_api.post(
        "/api/v1/model-providers/", TestModelProviderAPI.create_data, format="json"
    )
    assert response.status_code == 201, response.json()
    provider_id = response.json()["id"]
    assert response.json()["has_api_key"] is True
    responses = [
        response,
        admin_client_api.get("/api/v1/model-providers/"),
        admin_client_api.get(f"/api/v1/model-providers/{provider_id}/"),
        admin_client_api.patch(f"/api/v1/model-providers/{provider_id}/", {"name": "Ollama"}, format="json"),
    ]
    for r in responses:
        assert r.status_code in (200, 201)
        assert SECRET not in r.content.decode()
    assert ModelProvider.objects.get(pk=provider_id).api_key == SECRET  # kept when left out
    for event in AuditEvent.objects.filter(object_id=str(provider_id)):
        assert SECRET not in str(event.before) + str(event.after)
    cleared = admin_client_api.patch(
        f"/api/v1/model-providers/{provider_id}/", {"api_key": ""}, format="json"
    )
    assert cleared.json()["has_api_key"] is False


def test_remote_provider_without_url_talks_to_openai(admin_client_api):
    """An OpenAI-compatible provider created without a base URL uses OpenAI's."""
    response = admin_client_api.post(
        "/api/v1/model-providers/", {"name": "Remote", "kind": "openai_compatible"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["base_url"] == "https://api.openai.com/v1"


def test_negative_prices_400(admin_client_api):
    response = admin_client_api.post(
        "/api/v1/model-providers/", {"name": "Cheap", "price_input_per_1k": "-0.5"}, format="json"
    )
    assert_error(response, 400, fields=("price_input_per_1k",))


def test_editor_reads_but_cannot_write(org, editor_client):
    ModelProviderFactory(organization=org)
    assert editor_client.get("/api/v1/model-providers/").status_code == 200
    assert_error(editor_client.post("/api/v1/model-providers/", {"name": "X"}, format="json"), 403)


def test_one_default_per_organisation(org, admin_client_api):
    first = ModelProviderFactory(organization=org, is_default=True)
    response = admin_client_api.post(
        "/api/v1/model-providers/", {"name": "New", "is_default": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    first.refresh_from_db()
    assert not first.is_default
    rows = results(admin_client_api.get("/api/v1/model-providers/", {"is_default": "true"}))
    assert [r["name"] for r in rows] == ["New"]


def test_provider_in_use_cannot_be_deleted(org, admin_client_api):
    provider = ModelProviderFactory(organization=org)
    AgentFactory(organization=org, provider=provider)
    assert_error(admin_client_api.delete(f"/api/v1/model-providers/{provider.pk}/"), 409)
