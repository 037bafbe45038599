"""ASVS 5.0 level 2, chapter V2 (validation and business logic), for "Test connection" on a model
provider's page (issue 18): presses, each of which calls the provider, are limited."""

from __future__ import annotations

import pytest

from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    _fresh_rate_limits,
    connection_events,
    local_provider,
    models_list,
    press,
    window_start,
)

pytestmark = pytest.mark.django_db


def test_v2_4_1_presses_past_the_limit_call_nothing(
    admin_role_client,
    httpserver,
    local_provider,  # noqa: F811
    settings,
    window_start,  # noqa: F811
):
    """ASVS 5.0 V2.4.1 (anti-automation): past ``PROVIDER_TEST_RATE_LIMIT`` per user, a press is
    refused with the time to wait; the provider is not called and nothing is audited."""
    settings.PROVIDER_TEST_RATE_LIMIT = "3/m"
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    answers = [press(admin_role_client, provider) for _ in range(5)]
    assert ["connected" in a.content.decode() for a in answers] == [True, True, True, False, False]
    assert "Too many connection tests: wait" in answers[-1].content.decode()
    assert len(httpserver.log) == 3 and len(connection_events(provider)) == 3
