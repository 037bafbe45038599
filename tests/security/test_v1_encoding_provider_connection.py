"""ASVS 5.0 level 2, chapter V1 (encoding and sanitization), for "Test connection" on a model provider's
page (issue 18): the request it makes goes through the outbound guard of real runs (SSRF)."""

from __future__ import annotations

import socket

import pytest

from agents.models import ModelProvider
from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    _fresh_rate_limits,
    connection_events,
    error_shown,
    local_provider,
    models_list,
    press,
    unreachable,
)

pytestmark = pytest.mark.django_db


def test_v1_3_6_an_internal_address_is_refused_before_any_connection(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    settings,
):
    """ASVS 5.0 V1.3.6 (SSRF protected by an allow-list): a provider saved while the allow-list named
    its loopback server is tested after the list changed: the guard refuses the address before a
    connection is made, and the page says why."""
    provider = local_provider()
    settings.PROVIDER_ALLOWED_HOSTS = []
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    html = press(admin_role_client, provider).content.decode()
    assert "Blocked by the outbound policy" in html and "loopback address" in html
    assert len(httpserver.log) == 0
    assert connection_events(provider)[0].after["outcome"] == "failed"


def test_v1_3_6_a_redirect_to_an_internal_address_is_not_followed(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
):
    """ASVS 5.0 V1.3.6: an allowed server answering with a redirect to the cloud metadata address is
    not followed (one request only), and nothing of the answer is shown."""
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    html = press(admin_role_client, provider).content.decode()
    assert "provider unreachable (Local model)" in html
    assert "169.254.169.254" not in html and "302" not in html
    assert len(httpserver.log) == 1


def test_v1_3_6_what_stands_at_the_address_cannot_be_told_apart(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    settings,
):
    """ASVS 5.0 V1.3.6 (SSRF: no oracle on internal services): a closed port, a name that does not
    resolve, another service's HTML 401, 403 or 429, its JSON error, a redirect, and HTML 404s where
    the one-token request follows all read as the runs' "provider unreachable (<name>)" — neither
    status nor body — so the button cannot map what listens on the firm's network."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    provider = local_provider()
    settings.PROVIDER_ALLOWED_HOSTS += [f"127.0.0.1:{port}", "no-such-host.invalid"]
    server = httpserver.url_for("")
    for status, body in (
        (401, "<h1>401 Authorization Required</h1><p>nginx</p>"),
        (403, "<h1>Forbidden</h1><p>Jenkins</p>"),
        (429, "Too Many Requests"),
        (500, '{"error": {"reason": "elasticsearch"}}'),
        (404, "<h1>Not Found</h1><p>grafana</p>"),
    ):
        httpserver.expect_request(f"/s{status}/models").respond_with_data(
            body, status=status, content_type="text/html" if body[0] != "{" else "application/json"
        )
    httpserver.expect_request("/s404/chat/completions").respond_with_data("<h1>Not Found</h1>", status=404)
    httpserver.expect_request("/redirect/models").respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/"}
    )
    shown = {}
    for base_url in (
        f"http://127.0.0.1:{port}/v1",
        "http://no-such-host.invalid/v1",
        f"{server}s401",
        f"{server}s403",
        f"{server}s429",
        f"{server}s500",
        f"{server}s404",
        f"{server}redirect",
    ):
        ModelProvider.objects.filter(pk=provider.pk).update(base_url=base_url)
        shown[base_url] = error_shown(admin_role_client, provider)
    assert len(set(shown.values())) == 1, shown
    [message] = set(shown.values())
    assert message.startswith(unreachable()) and "the cause is in the server log" in message
    for told in ("refused", "resolve", "HTTP", "401", "nginx", "Jenkins", "grafana", "Not Found", "302"):
        assert told not in message
    # Without a default model the 404 page is not asked a one-token request: still the same message.
    ModelProvider.objects.filter(pk=provider.pk).update(base_url=f"{server}s404", default_model="")
    assert error_shown(admin_role_client, provider) == message
