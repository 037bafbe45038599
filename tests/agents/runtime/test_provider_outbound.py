"""Model providers behind the outbound guard: ``base_url`` checked when saved (API, service, admin)
and at each call, with the providers' own allow-list; failures told as "provider unreachable"
whatever the internal service, the detail in the log. Real local servers throughout."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from django.core.exceptions import ValidationError
from werkzeug import Response

from agents.models import ModelProvider
from agents.runtime import execute
from agents.services import provider_create
from tests.agents.runtime.test_openai_provider import completion
from tests.factories import ModelProviderFactory
from tests.platform.test_outbound import FlipResolver
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

PROVIDERS = "/api/v1/model-providers/"
LOG = "agents.runtime.providers.openai_compatible"


def provider_data(base_url, **fields):
    return {"name": "Local model", "kind": "openai_compatible", "base_url": base_url, **fields}


# --- When a provider is saved ---------------------------------------------------------------------


def test_the_metadata_address_is_refused_at_save(admin_client_api, org):
    body = assert_error(
        admin_client_api.post(PROVIDERS, provider_data("http://169.254.169.254/v1"), format="json"),
        400,
        fields=("base_url",),
    )
    message = body["errors"]["base_url"][0]
    assert "169.254.169.254 is a link-local address" in message
    assert "not allowed by the outbound policy" in message
    assert "PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS" in message
    assert not ModelProvider.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:11434/v1",
        "http://localhost:11434/v1",
        "http://10.0.0.7:8000/v1",
        "http://100.64.1.1/v1",
    ],
)
def test_internal_base_urls_are_refused_without_the_allow_list(admin_client_api, base_url):
    response = admin_client_api.post(PROVIDERS, provider_data(base_url), format="json")
    assert (
        "not allowed by the outbound policy" in assert_error(response, 400, fields=("base_url",))["message"]
    )


@pytest.mark.parametrize(
    ("base_url", "kind"),
    [
        ("http://[::1]:11434/v1", "loopback"),
        ("http://[::127.0.0.1]:11434/v1", "loopback"),
        ("http://[::ffff:0:127.0.0.1]:11434/v1", "loopback"),
        ("http://[64:ff9b::7f00:1]:11434/v1", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/v1", "link-local"),
        ("http://[2002:7f00:1::]:11434/v1", "loopback"),
        ("http://[2002:a9fe:a9fe::]/v1", "link-local"),
    ],
)
def test_ipv6_base_urls_are_judged_by_the_ipv4_they_carry(org, base_url, kind):
    """(The API's URL field takes no IPv6 literal; the model, which the admin and services use, does.)"""
    provider = ModelProvider(organization=org, name="P", kind="openai_compatible", base_url=base_url)
    with pytest.raises(ValidationError) as caught:
        provider.full_clean()
    assert f"is a {kind} address" in caught.value.message_dict["base_url"][0]


def test_the_allow_list_admits_a_local_model_server_on_its_port_only(admin_client_api, settings):
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1:11434"]
    response = admin_client_api.post(PROVIDERS, provider_data("http://127.0.0.1:11434/v1"), format="json")
    assert response.status_code == 201, response.json()
    for other in ("http://127.0.0.1:11435/v1", "http://127.0.0.1/v1", "http://127.0.0.2:11434/v1"):
        assert_error(
            admin_client_api.post(PROVIDERS, provider_data(other, name=other), format="json"),
            400,
            fields=("base_url",),
        )
    # Moving the saved provider to another port is refused too, and changes nothing.
    provider_id = response.json()["id"]
    assert_error(
        admin_client_api.patch(
            f"{PROVIDERS}{provider_id}/", {"base_url": "http://127.0.0.1:22/"}, format="json"
        ),
        400,
        fields=("base_url",),
    )
    assert ModelProvider.objects.get(pk=provider_id).base_url == "http://127.0.0.1:11434/v1"


def test_the_service_refuses_an_internal_base_url(org, admin_user):
    with pytest.raises(ValidationError) as caught:
        provider_create(
            organization=org,
            actor=admin_user,
            name="Metadata",
            kind="openai_compatible",
            base_url="http://169.254.169.254/latest/",
        )
    assert "link-local" in caught.value.message_dict["base_url"][0]


def test_the_admin_form_shows_the_refusal(admin_user, org):
    response = login(admin_user).post(
        "/admin/agents/modelprovider/add/",
        {
            "name": "Metadata",
            "kind": "openai_compatible",
            "base_url": "http://169.254.169.254/v1",
            "default_model": "gpt",
            "price_input_per_1k": "0",
            "price_output_per_1k": "0",
            "timeout_seconds": 30,
            "max_retries": 2,
        },
    )
    assert response.status_code == 200
    assert "169.254.169.254 is a link-local address" in response.content.decode()
    assert not ModelProvider.objects.filter(organization=org).exists()


def test_offline_providers_and_public_urls_are_not_affected(admin_client_api):
    """Names that do not resolve at save time (here, nothing resolves outside) pass: the call checks."""
    for data in (
        {"name": "Offline", "kind": "offline"},
        provider_data("https://api.openai.com/v1", name="OpenAI"),
        provider_data("https://firm.openai.azure.com/openai/v1/", name="Azure"),
    ):
        response = admin_client_api.post(PROVIDERS, data, format="json")
        assert response.status_code == 201, response.json()


# --- At each call ---------------------------------------------------------------------------------


def run(make_agent, org, base_url, **fields):
    provider = ModelProviderFactory(
        organization=org,
        kind="openai_compatible",
        base_url=base_url,
        default_model="gpt-test",
        timeout_seconds=5,
        **{"name": "Firm model", "max_retries": 0, **fields},
    )
    return execute(make_agent(provider=provider, guards=None, name=provider.name), "Anything?", source="api")


def test_a_stored_loopback_provider_is_refused_at_the_call(httpserver, make_agent, org, settings, caplog):
    """The allow-list no longer names a provider saved earlier: the call is refused before any
    connection, without retries; the log says why."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("Hello"))
    settings.PROVIDER_ALLOWED_HOSTS = []
    caplog.set_level(logging.WARNING, logger=LOG)
    execution = run(make_agent, org, httpserver.url_for("/v1"), max_retries=3)
    assert execution.status == "failed"
    assert execution.error == (
        "provider unreachable (Firm model): its address is not allowed by the outbound policy"
    )
    assert len(httpserver.log) == 0
    assert "refused by the outbound guard" in caplog.text and "loopback" in caplog.text


def test_the_allow_list_port_decides_at_the_call(httpserver, make_agent, org, settings):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("Hello"))
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port + 1}"]
    assert run(make_agent, org, httpserver.url_for("/v1")).status == "failed"
    assert len(httpserver.log) == 0
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    execution = run(make_agent, org, httpserver.url_for("/v1"), name="Firm model 2")
    assert execution.status == "completed" and execution.output == "Hello"


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class HangUpServer:
    """A TCP server on loopback that reads the request and closes the connection without answering."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(65536)
            conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("retries", [0, 2], ids=["no-retries", "retries"])
def test_internal_services_all_read_provider_unreachable(
    httpserver, make_agent, org, settings, caplog, retries
):
    """Finding 7: a closed port, a service that hangs up, a web service answering 404 and another
    service's JSON error were told apart by their errors (and, with retries, by the number of
    attempts). Now the user reads the same sentence; the log has each cause."""
    httpserver.expect_request("/v1/chat/completions").respond_with_response(
        Response("404: No API endpoint matches this path", status=404, content_type="text/plain")
    )
    httpserver.expect_request("/search/chat/completions").respond_with_json(
        {"error": {"root_cause": [], "type": "index_not_found_exception", "reason": "no such index"}},
        status=404,
    )
    hang_up = HangUpServer()
    refused = closed_port()
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    caplog.set_level(logging.WARNING, logger=LOG)
    try:
        errors = {}
        for name, base_url in [
            ("refused", f"http://127.0.0.1:{refused}/v1"),
            ("disconnected", f"http://127.0.0.1:{hang_up.port}/v1"),
            ("not found", httpserver.url_for("/v1")),
            ("search", httpserver.url_for("/search")),
        ]:
            execution = run(make_agent, org, base_url, name=f"Internal {name}", max_retries=retries)
            assert execution.status == "failed"
            errors[name] = execution.error.replace(f"Internal {name}", "Internal")
            step = execution.steps.get(kind="model_call")
            assert step.output["status_code"] is None
    finally:
        hang_up.close()
    assert set(errors.values()) == {"provider unreachable (Internal)"}, errors
    assert hang_up.accepted == 1 + retries
    assert "Connection refused" in caplog.text
    # A hang-up reads as either, depending on whether the server closed before reading the whole request.
    assert "Server disconnected" in caplog.text or "Connection reset by peer" in caplog.text
    assert "HTTP 404" in caplog.text and "No API endpoint" in caplog.text
    assert "index_not_found_exception" in caplog.text


def test_a_provider_error_in_the_openai_shape_is_still_reported(httpserver, make_agent, org, settings):
    """A real provider's answer (an OpenAI-style error object) keeps its useful reason."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "The model `gpt-test` does not exist", "type": "invalid_request_error"}},
        status=404,
    )
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    execution = run(make_agent, org, httpserver.url_for("/v1"))
    assert execution.error == (
        "provider endpoint or model not found (HTTP 404): The model `gpt-test` does not exist"
    )


def test_redirects_are_not_followed(httpserver, make_agent, org, settings):
    """A provider answering with a redirect is unreachable; neither the metadata address nor another
    allowed path is requested."""
    httpserver.expect_request("/v1/chat/completions").respond_with_response(
        Response("", status=307, headers={"Location": httpserver.url_for("/other/chat/completions")})
    )
    httpserver.expect_request("/other/chat/completions").respond_with_json(completion("Redirected"))
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    execution = run(make_agent, org, httpserver.url_for("/v1"))
    assert execution.status == "failed" and execution.error == "provider unreachable (Firm model)"
    assert [entry[0].path for entry in httpserver.log] == ["/v1/chat/completions"]


def test_a_rebinding_name_passes_the_save_check_but_not_the_call(
    httpserver, make_agent, org, admin_client_api, monkeypatch
):
    """DNS rebinding: the name resolves to a public address when saved, to loopback when called."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("Internal"))
    FlipResolver(monkeypatch, "93.184.216.34", "127.0.0.1")
    base_url = f"http://rebind.example:{httpserver.port}/v1"
    response = admin_client_api.post(PROVIDERS, provider_data(base_url, default_model="m"), format="json")
    assert response.status_code == 201, response.json()
    provider = ModelProvider.objects.get(pk=response.json()["id"])
    execution = execute(make_agent(provider=provider, guards=None), "Anything?", source="api")
    assert execution.status == "failed"
    assert execution.error.endswith("not allowed by the outbound policy")
    assert len(httpserver.log) == 0
