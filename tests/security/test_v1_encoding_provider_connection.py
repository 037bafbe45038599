"""ASVS 5.0 level 2, chapter V1 (encoding and sanitization), for "Test connection" on a model provider's
page (issue 18): the request it makes goes through the outbound guard of real runs (SSRF)."""

from __future__ import annotations

import pytest

from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    _fresh_rate_limits,
    connection_events,
    local_provider,
    models_list,
    press,
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
