"""Rate limits against a real Redis: per API key, per user, stricter for executions, and per IP for
failed authentications. 429 comes in the shared error shape with Retry-After."""

from __future__ import annotations

import os
import uuid

import pytest
import time_machine
from django.utils import timezone
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from prisma_glow.api.throttling import execute_rate_limit
from tests.conftest import client_for
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory
from tests.support.api import assert_error

URL = "/api/v1/organization/"


@pytest.fixture
def redis_limits(settings):
    """Rate limits counted in the test Redis, under a key prefix of their own."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (scripts/test starts redis-server and sets it)")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        },
    }
    settings.RATELIMIT_USE_CACHE = "ratelimit"
    settings.RATELIMIT_ENABLE = True
    settings.API_RATE_LIMIT = "3/h"
    settings.API_EXECUTE_RATE_LIMIT = "2/h"
    settings.API_AUTH_FAILURE_RATE_LIMIT = "2/h"
    # The windows are fixed, and django-ratelimit ends each key's at an offset of its own (a hash of
    # the key): an hourly window can still end between two requests of a test. The clock stands
    # still while the test counts, so none does.
    with time_machine.travel(timezone.now(), tick=False):
        yield settings


def assert_throttled(response):
    body = assert_error(response, 429)
    assert body["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 3600
    return body


def test_per_api_key(redis_limits, org):
    first, second = (APIKeyFactory(organization=org, scopes=["read"]) for _ in range(2))
    client = client_for(key=first.plaintext)
    for _ in range(3):
        assert client.get(URL).status_code == 200
    assert_throttled(client.get(URL))
    assert client_for(key=second.plaintext).get(URL).status_code == 200


def test_per_user(redis_limits, org, viewer, editor):
    client = client_for(viewer)
    for _ in range(3):
        assert client.get(URL).status_code == 200
    assert_throttled(client.get(URL))
    assert client_for(editor).get(URL).status_code == 200


def test_disabled_or_empty_rate_means_no_limit(redis_limits, org, viewer):
    redis_limits.API_RATE_LIMIT = ""
    client = client_for(viewer)
    for _ in range(5):
        assert client.get(URL).status_code == 200
    redis_limits.API_RATE_LIMIT = "1/h"
    redis_limits.RATELIMIT_ENABLE = False
    for _ in range(3):
        assert client.get(URL).status_code == 200


def test_failed_authentications_limited_per_ip(redis_limits, org):
    """After too many bad keys from one address, even a good key from it waits; others do not."""
    good = APIKeyFactory(organization=org, scopes=["read"])
    for _ in range(2):
        assert_error(client_for(key="pg_00000000.wrong").get(URL), 401)
    assert_throttled(client_for(key="pg_00000000.wrong").get(URL))
    assert_throttled(client_for(key=good.plaintext).get(URL))
    assert client_for(key=good.plaintext).get(URL, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_unreachable_cache_lets_requests_through(settings, org, viewer):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        },
    }
    settings.RATELIMIT_USE_CACHE = "ratelimit"
    settings.API_RATE_LIMIT = "1/h"
    client = client_for(viewer)
    for _ in range(2):
        assert client.get(URL).status_code == 200


class ExecuteLikeViewSet(viewsets.ViewSet):
    """Stands for an agent viewset: ``run`` has the stricter execute limit, ``ping`` the general one."""

    operations = {"run": "agent.execute", "ping": "agent.view"}

    @execute_rate_limit
    @action(detail=False, methods=["post"])
    def run(self, request):
        return Response({"ran": True})

    @action(detail=False, methods=["get"])
    def ping(self, request):
        return Response({"ok": True})


def test_execute_decorator_applies_the_stricter_separate_limit(redis_limits, org):
    redis_limits.API_RATE_LIMIT = "10/h"
    user = UserFactory(username="runner")
    MembershipFactory(user=user, organization=org, role="editor")
    run = ExecuteLikeViewSet.as_view({"post": "run"}, **ExecuteLikeViewSet.run.kwargs)
    ping = ExecuteLikeViewSet.as_view({"get": "ping"})
    factory = APIRequestFactory()

    def call(view, method):
        request = getattr(factory, method)("/x/", {}, format="json")
        force_authenticate(request, user=user)
        return view(request)

    assert call(run, "post").status_code == 200
    assert call(run, "post").status_code == 200
    response = call(run, "post")
    assert response.status_code == 429
    assert response.data["code"] == "throttled" and set(response.data) == {
        "status",
        "code",
        "message",
        "errors",
    }
    assert int(response["Retry-After"]) > 0
    assert call(ping, "get").status_code == 200


def test_execute_decorator_must_sit_above_action():
    with pytest.raises(TypeError):
        execute_rate_limit(lambda self, request: None)
