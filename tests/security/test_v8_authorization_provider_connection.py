"""ASVS 5.0 level 2, chapter V8 (authorization), for "Test connection" on a model provider's page
(issue 18): who may make the platform call a provider with its stored key."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.agents.test_admin_providers import (  # noqa: F401 (fixtures)
    HX,
    _fresh_rate_limits,
    connection_events,
    connection_url,
    local_provider,
    models_list,
    press,
)
from tests.factories import ModelProviderFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db


def test_v8_2_1_only_those_who_may_change_the_provider_test_it(
    httpserver,
    local_provider,  # noqa: F811
    viewer,
    editor,
    admin_user,
):
    """ASVS 5.0 V8.2.1 (function-level access): ``model_provider.test`` needs the provider's change
    right (admin or owner): a viewer and an editor get 403, the provider is not called and nothing is
    audited; an anonymous request goes to the sign-in page; an admin tests it."""
    provider = local_provider()
    httpserver.expect_request("/v1/models").respond_with_json(models_list("gpt-test"))
    for member in (viewer, editor):
        assert press(login(member), provider).status_code == 403
    anonymous = Client().post(connection_url(provider), **HX)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert len(httpserver.log) == 0 and connection_events(provider) == []
    assert press(login(admin_user), provider).status_code == 200
    assert len(httpserver.log) == 1


def test_v8_4_1_another_organisations_provider_is_a_404(
    admin_role_client, outsider_org, httpserver, settings
):
    """ASVS 5.0 V8.4.1 (cross-tenant access): another organisation's provider is a 404, its server is
    never called and its audit log gets nothing."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    theirs = ModelProviderFactory(
        organization=outsider_org,
        kind="openai_compatible",
        base_url=httpserver.url_for("/v1"),
        api_key="sk-x",
    )
    assert press(admin_role_client, theirs).status_code == 404
    assert len(httpserver.log) == 0 and connection_events(theirs) == []
