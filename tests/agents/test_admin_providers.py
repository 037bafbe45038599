"""A model provider's page and the agent's settings page: the product's labels, help texts and layout,
and "Test connection" against a real local model server (pytest-httpserver), through the outbound
guard and timeout of real runs."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from werkzeug import Response

from agents.models import ModelProvider
from prisma_glow.audit.models import AuditEvent
from tests.factories import AgentFactory, ModelProviderFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

KEY = "sk-test-connection-secret"
HX = {"HTTP_HX_REQUEST": "true"}
ADD = "/admin/agents/modelprovider/add/"


def models_list(*ids):
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 1700000000, "owned_by": "firm"} for i in ids],
    }


def error_body(message, kind="invalid_request_error"):
    return {"error": {"message": message, "type": kind, "code": None}}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # The test presses count per user in the local cache, which lives as long as the process.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def window_start():
    """The rate limit counts in fixed one-minute windows, and django-ratelimit shifts each key's
    window by a jitter of its own (a hash of the key, which holds the user's sign-up time): no moment
    is a window's start for every run. The clock stands still while the presses are counted, so a
    window cannot end between two of them and reset the count."""
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, 1, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def local_provider(httpserver, org, settings):
    """``local_provider(**fields)``: an OpenAI-compatible provider on the local model server, which the
    providers' allow-list names with its port."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    def build(**fields):
        return ModelProviderFactory(
            organization=org,
            kind="openai_compatible",
            **{
                "name": "Local model",
                "base_url": httpserver.url_for("/v1"),
                "api_key": KEY,
                "default_model": "gpt-test",
                "timeout_seconds": 5,
                "max_retries": 0,
                **fields,
            },
        )

    return build


def connection_url(provider) -> str:
    return f"/admin/agents/modelprovider/{provider.pk}/test-connection/"


def press(client: Client, provider, *, htmx=True):
    return client.post(connection_url(provider), **(HX if htmx else {}))


def connection_events(provider):
    return list(AuditEvent.objects.filter(action="provider.test", object_id=str(provider.pk)).order_by("id"))


def assert_no_key(*texts):
    for text in texts:
        assert KEY not in str(text)


def unreachable(name="Local model"):
    """The one message of a failed connection or an answer that is not a provider's (the runs' own)."""
    return f"provider unreachable ({name}): no OpenAI-compatible answer from the base URL."


def error_shown(client, provider) -> str:
    """The error line of the result panel (what the person reads), and the same in the audit event."""
    html = press(client, provider).content.decode()
    match = re.search(r"<strong>Connection failed</strong>.*?<br>\s*(.*?)\s*</div>", html, re.S)
    assert match, html
    assert connection_events(provider)[-1].after["error"] == unescape(match[1])
    return match[1]


# --- Labels, help texts, layout ---------------------------------------------------------------------


def test_the_add_page_speaks_the_products_language(admin_role_client):
    html = admin_role_client.get(ADD).content.decode()
    for text in (
        ">Base URL",
        ">API key",
        ">Default provider for new agents",
        ">Timeout (seconds)",
        ">Input price per 1,000 tokens",
        "The OpenAI-compatible endpoint, e.g. https://api.openai.com/v1",
        "Write-only: it is stored encrypted and never shown again.",
        ">Connection<",
        ">Limits<",
        ">Prices<",
        'name="_save"',
        "<h1 hx-disable>New model provider</h1>",
    ):
        assert text in html, text
    for stock in (
        "Base url",
        "Api key",
        "Is default",
        "Price input per 1k",
        "Remove the stored API key",
        'name="clear_api_key"',
        "Save and add another",
        "Save and continue editing",
        "pg-provider-test-button",  # nothing saved to test yet
    ):
        assert stock not in html, stock


def test_adding_opens_the_new_providers_page(admin_role_client, org):
    response = admin_role_client.post(
        ADD,
        {
            "name": "Offline",
            "kind": "offline",
            "base_url": "",
            "api_key": "",
            "default_model": "",
            "price_input_per_1k": "0",
            "price_output_per_1k": "0",
            "timeout_seconds": 30,
            "max_retries": 2,
        },
    )
    provider = ModelProvider.objects.get(organization=org, name="Offline")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/agents/modelprovider/{provider.pk}/change/"


def test_the_remove_key_control_only_on_a_provider_that_holds_one(admin_role_client, org):
    with_key = ModelProviderFactory(organization=org, name="Keyed", api_key=KEY)
    without = ModelProviderFactory(organization=org, name="Keyless", api_key="")
    html = admin_role_client.get(f"/admin/agents/modelprovider/{with_key.pk}/change/").content.decode()
    assert 'name="clear_api_key"' in html and "Remove the stored API key" in html
    assert "Stored — leave blank to keep" in html
    assert_no_key(html)
    assert "Save and add another" not in html and "Save and continue editing" not in html
    assert 'name="_save"' in html and ">Test connection</button>" in html
    html = admin_role_client.get(f"/admin/agents/modelprovider/{without.pk}/change/").content.decode()
    assert 'name="clear_api_key"' not in html and "Stored — leave blank to keep" not in html


def test_removing_the_stored_key_still_works(admin_role_client, org):
    provider = ModelProviderFactory(organization=org, name="Keyed", kind="offline", api_key=KEY)
    form = {
        "name": "Keyed",
        "kind": "offline",
        "base_url": "",
        "api_key": "",
        "clear_api_key": "on",
        "default_model": "",
        "price_input_per_1k": "0",
        "price_output_per_1k": "0",
        "timeout_seconds": 30,
        "max_retries": 2,
    }
    response = admin_role_client.post(f"/admin/agents/modelprovider/{provider.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    provider.refresh_from_db()
    assert provider.api_key == ""


def test_a_viewer_reads_a_provider_without_its_key_or_the_test_button(viewer_admin_client, org):
    provider = ModelProviderFactory(organization=org, api_key=KEY)
    html = viewer_admin_client.get(f"/admin/agents/modelprovider/{provider.pk}/change/").content.decode()
    assert_no_key(html)
    assert "pg-provider-test-button" not in html and 'name="_save"' not in html
    assert ">Base URL" in html


def test_the_agent_settings_page_explains_type_and_status(owner, org):
    staff_client = login(owner)
    agent = AgentFactory(organization=org, name="VAT adviser (demo)", status="draft")
    html = staff_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    for text in (
        ">Practice area",
        ">Responsible person",
        ">Model provider",
        ">Tool rounds per run",
        ">Run time limit (seconds)",
        "it changes nothing in how the agent runs",
        "default provider, or the offline engine when there is none",
        "Not available to clients yet",
        "Releases and activation",
        "never on this page",
        ">Limits<",
        "<h1 hx-disable>Agent settings</h1>",
    ):
        assert text in html, text
    # Providers are managed on their own pages, not from here.
    assert 'id="add_id_provider"' not in html and 'id="change_id_provider"' not in html
    # The status is not a free choice here (issue 17: releases and activation change it).
    assert 'name="status"' not in html
    assert "Save and add another" not in html and "Save and continue editing" not in html
    assert ">Max tool rounds" not in html and ">Owner<" not in html


def test_the_agent_settings_page_still_saves_and_ignores_a_posted_status(staff_client, org):
    agent = AgentFactory(organization=org, name="VAT adviser (demo)", status="draft")
    response = staff_client.post(
        f"/admin/agents/agent/{agent.pk}/change/",
        {
            "name": "VAT adviser (demo)",
            "slug": agent.slug,
            "type": "tax",
            "description": "",
            "owner": "",
            "provider": "",
            "model": "",
            "max_tool_rounds": 3,
            "timeout_seconds": 60,
            "status": "active",
        },
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.type, agent.max_tool_rounds, agent.status) == ("tax", 3, "draft")


# --- Test connection: what the provider answers -----------------------------------------------------------


def test_the_model_list_is_shown_with_the_latency(admin_role_client, httpserver, local_provider):
    provider = local_provider()
    httpserver.expect_request("/v1/models", method="GET").respond_with_json(
        models_list("gpt-test", "gpt-large", "text-embedding-small")
    )
    response = press(admin_role_client, provider)
    html = response.content.decode()
    assert response.status_code == 200
    assert "connected" in html and "3 models listed" in html
    assert "<code>gpt-large</code>" in html and "<code>text-embedding-small</code>" in html
    assert "the default model “gpt-test” is among them" in html
    assert re.search(r"in \d+(\.\d+)? (ms|s)<", html)
    # The key went to the provider, and nowhere else.
    request, _ = httpserver.log[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    [event] = connection_events(provider)
    assert event.after["outcome"] == "ok" and event.after["method"] == "models"
    assert event.after["models"] == 3 and event.actor_user_id is not None
    assert_no_key(html, json.dumps(event.after), json.dumps(event.before))


def test_a_default_model_missing_from_the_list_is_pointed_out(admin_role_client, httpserver, local_provider):
    provider = local_provider(default_model="gpt-typo")
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    html = press(admin_role_client, provider).content.decode()
    assert "“gpt-typo” is <strong>not</strong> among them" in html


def test_without_javascript_a_message_and_the_providers_page(admin_role_client, httpserver, local_provider):
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test", "gpt-large"))
    response = press(admin_role_client, provider, htmx=False)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/agents/modelprovider/{provider.pk}/change/"
    page = admin_role_client.get(response["Location"]).content.decode()
    assert "Connected in" in page and "2 model(s) listed (gpt-large, gpt-test)." in page
    assert_no_key(page)


def test_a_server_without_a_model_list_gets_a_one_token_request(
    admin_role_client, httpserver, local_provider
):
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(error_body("Not found"), status=404)
    bodies = []

    def chat(request):
        bodies.append(json.loads(request.get_data(as_text=True)))
        return Response(
            json.dumps(
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": "gpt-test",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "OK"},
                            "finish_reason": "length",
                        }
                    ],
                    "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
                }
            ),
            content_type="application/json",
        )

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(chat)
    html = press(admin_role_client, provider).content.decode()
    assert "connected" in html and "“gpt-test” answered a one-token request" in html
    assert "<code>OK</code>" in html
    assert bodies[0]["max_tokens"] == 1 and bodies[0]["model"] == "gpt-test"
    assert connection_events(provider)[0].after["method"] == "completion"


def test_a_base_url_without_the_api_says_so(admin_role_client, httpserver, local_provider):
    """The base URL lacks "/v1": neither the model list nor the one-token request finds an
    OpenAI-compatible answer, and the page says which setting to check."""
    provider = local_provider()
    for path in ("/v1/models", "/v1/chat/completions"):
        httpserver.expect_request(path).respond_with_data(
            "<h1>Not Found</h1>", status=404, content_type="text/html"
        )
    html = press(admin_role_client, provider).content.decode()
    assert unreachable() in html and "it usually ends in /v1" in html
    assert "Not Found" not in html and "404" not in html
    assert [request.path for request, _ in httpserver.log] == ["/v1/models", "/v1/chat/completions"]


def test_a_one_token_request_refused_keeps_the_providers_reason(
    admin_role_client, httpserver, local_provider
):
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(error_body("no listing"), status=404)
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        error_body("model 'gpt-test' not found"), status=404
    )
    html = press(admin_role_client, provider).content.decode()
    assert "The one-token request failed: provider endpoint or model not found (HTTP 404)" in html
    assert "model &#x27;gpt-test&#x27; not found" in html


def test_a_refused_api_key_says_so(admin_role_client, httpserver, local_provider):
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(
        error_body(f"Incorrect API key provided: {KEY[:6]}…", "invalid_api_key"), status=401
    )
    html = press(admin_role_client, provider).content.decode()
    assert "Connection failed" in html
    assert "The provider refused the API key (HTTP 401): type the key again" in html
    [event] = connection_events(provider)
    assert event.after["outcome"] == "failed" and "HTTP 401" in event.after["error"]
    assert_no_key(html, json.dumps(event.after))


def test_another_service_at_the_address_is_not_described(admin_role_client, httpserver, local_provider):
    """As for runs: the status and body of something that is not an OpenAI-compatible server are not
    shown (they would tell internal services apart)."""
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_data(
        "<h1>Tomcat internal admin</h1>", status=500, content_type="text/html"
    )
    html = press(admin_role_client, provider).content.decode()
    assert unreachable() in html
    assert "Tomcat" not in html and "500" not in html


def test_a_slow_provider_times_out_after_its_timeout(admin_role_client, httpserver, local_provider):
    provider = local_provider(timeout_seconds=1)
    done = threading.Event()

    def slow(request):
        done.wait(10)  # released as soon as the test has its answer (the server serves one at a time)
        return Response(json.dumps(models_list("late")), content_type="application/json")

    httpserver.expect_request("/v1/models").respond_with_handler(slow)
    try:
        html = press(admin_role_client, provider).content.decode()
    finally:
        done.set()
    # The runs' wording ("provider timed out after 1 s"): a timeout may be told apart, as in runs.
    assert "The provider timed out after 1 s (its timeout)" in html
    event = connection_events(provider)[0]
    # Cut at its 1 s timeout, far from the server's 10 s (the upper bound leaves room for a loaded machine).
    assert event.after["outcome"] == "failed" and 900 < event.after["latency_ms"] < 3500


def test_the_outbound_policy_blocks_with_its_reason(admin_role_client, httpserver, local_provider, settings):
    provider = local_provider()
    settings.PROVIDER_ALLOWED_HOSTS = []  # the allow-list no longer names the local server
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    html = press(admin_role_client, provider).content.decode()
    assert "Blocked by the outbound policy: localhost resolves to a loopback address" in html
    assert "PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS" in html
    assert len(httpserver.log) == 0  # refused before any connection
    assert connection_events(provider)[0].after["outcome"] == "failed"


def test_a_providers_own_error_keeps_its_reason(admin_role_client, httpserver, local_provider):
    """The providers' error objects (OpenAI's, Ollama's string) are told apart: they name what to fix."""
    provider = local_provider()
    httpserver.expect_ordered_request("/v1/models").respond_with_json(
        error_body("no", "forbidden"), status=403
    )
    httpserver.expect_ordered_request("/v1/models").respond_with_json({"error": "slow down"}, status=429)
    httpserver.expect_ordered_request("/v1/models").respond_with_json(error_body("boom"), status=503)
    assert "The provider refused access (HTTP 403)" in error_shown(admin_role_client, provider)
    assert "The provider&#x27;s rate limit is reached (HTTP 429)" in error_shown(admin_role_client, provider)
    assert "The provider failed (HTTP 503)" in error_shown(admin_role_client, provider)


@pytest.mark.parametrize(
    "answer",
    [{"data": "abc"}, {"data": [1]}, {"data": [{"name": "x"}]}, {"data": [{"id": 7}]}, {"object": "list"}],
)
def test_json_that_is_not_a_model_list_is_not_a_connection(
    admin_role_client, httpserver, local_provider, answer
):
    """Any JSON with a ``data`` key is not a working provider: ``data`` must be a list of objects with
    string ``id``s."""
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(answer)
    html = press(admin_role_client, provider).content.decode()
    assert "connected" not in html
    assert "The address answered, but not as an OpenAI-compatible API" in html
    assert connection_events(provider)[0].after["outcome"] == "failed"


def test_an_empty_model_list_is_a_connection(admin_role_client, httpserver, local_provider):
    """A real provider may list no models (an Ollama with none pulled yet)."""
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json({"object": "list", "data": []})
    html = press(admin_role_client, provider).content.decode()
    assert "connected" in html and "0 models listed" in html


def test_the_offline_engine_answers_without_a_network(admin_role_client, org):
    provider = ModelProviderFactory(organization=org, kind="offline", name="Offline")
    page = admin_role_client.get(f"/admin/agents/modelprovider/{provider.pk}/change/").content.decode()
    assert "there is nothing to connect to and no key" in page
    html = press(admin_role_client, provider).content.decode()
    assert "connected" in html and "The offline engine answered" in html
    assert "Offline engine (extractive; not a generative model)" in html
    assert connection_events(provider)[0].after["method"] == "offline"


# --- Who may press it, and how often -------------------------------------------------------------------


def test_only_those_who_may_change_the_provider_may_test_it(
    httpserver, local_provider, viewer, editor, owner, outsider_org
):
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    assert press(login(viewer), provider).status_code == 403
    assert press(login(editor), provider).status_code == 403
    assert press(login(owner), provider).status_code == 200
    anonymous = Client().post(connection_url(provider), **HX)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert len(httpserver.log) == 1 and len(connection_events(provider)) == 1


def test_another_organisations_provider_is_not_found(admin_role_client, outsider_org, httpserver, settings):
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    theirs = ModelProviderFactory(
        organization=outsider_org, kind="openai_compatible", base_url=httpserver.url_for("/v1")
    )
    assert press(admin_role_client, theirs).status_code == 404
    assert len(httpserver.log) == 0 and not connection_events(theirs)


def test_only_post_and_only_with_the_csrf_token(admin_user, local_provider):
    provider = local_provider()
    client = login(admin_user)
    assert client.get(connection_url(provider)).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(connection_url(provider), **HX).status_code == 403
    assert not connection_events(provider)


def test_presses_are_rate_limited_per_user(
    admin_role_client, httpserver, local_provider, settings, window_start
):
    settings.PROVIDER_TEST_RATE_LIMIT = "2/m"
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    assert "connected" in press(admin_role_client, provider).content.decode()
    assert "connected" in press(admin_role_client, provider).content.decode()
    third = press(admin_role_client, provider)
    assert "Too many connection tests: wait" in third.content.decode()
    assert int(third["Retry-After"]) >= 1
    response = press(admin_role_client, provider, htmx=False)
    assert response.status_code == 302
    assert "Too many connection tests" in admin_role_client.get(response["Location"]).content.decode()
    assert len(httpserver.log) == 2 and len(connection_events(provider)) == 2
