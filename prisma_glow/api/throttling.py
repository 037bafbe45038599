"""Rate limits on the API, counted by django-ratelimit in the shared cache (Redis in production).

- every authenticated request counts against its API key or its user: ``API_RATE_LIMIT``
  (env ``PRISMA_GLOW_API_RATE``, default ``600/m``);
- expensive actions (agent execution) count separately and more strictly: ``API_EXECUTE_RATE_LIMIT``
  (``PRISMA_GLOW_API_EXECUTE_RATE``, default ``60/m``) — apply ``@execute_rate_limit`` above
  ``@action`` or put ``EXECUTE_THROTTLES`` / ``ExecuteRateLimitMixin`` on a view;
- failed authentications (unknown, revoked or expired keys) count per client IP:
  ``API_AUTH_FAILURE_RATE_LIMIT`` (``PRISMA_GLOW_API_AUTH_FAILURE_RATE``, default ``60/m``), so keys
  cannot be guessed quickly.

A request over a limit gets 429 in the shared error shape with ``Retry-After`` (seconds). An empty
rate disables that limit; ``RATELIMIT_ENABLE = False`` disables them all. If the cache cannot be
reached the request is let through and a warning is logged (availability over strictness).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from prisma_glow.tenancy.models import APIKey

logger = logging.getLogger("prisma_glow.api")

DEFAULT_RATES = {
    "API_RATE_LIMIT": "600/m",
    "API_EXECUTE_RATE_LIMIT": "60/m",
    "API_AUTH_FAILURE_RATE_LIMIT": "60/m",
}


def rate_for(setting: str) -> str | None:
    return getattr(settings, setting, DEFAULT_RATES[setting]) or None


def caller_key(group, request) -> str:
    """The identity a limit counts against: the API key, else the user, else the client IP."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, APIKey):
        return f"key:{auth.prefix}"
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
        # date_joined tells apart users who reuse a primary key after a database reset.
        joined = getattr(user, "date_joined", None)
        return f"user:{user.pk}:{joined.timestamp() if joined else ''}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


def ip_key(group, request) -> str:
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


def consume(request, *, group: str, rate: str | None, key=caller_key) -> int | None:
    """Count one request in ``group``; return the seconds to wait when over the limit, else None."""
    if not rate:
        return None
    django_request = getattr(request, "_request", request)
    try:
        usage = get_usage(django_request, group=group, key=key, rate=rate, increment=True)
    except Exception:  # the cache is down: let the request through, loudly
        logger.warning("Rate limit cache unavailable; request allowed", exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    if usage["limit"] == 0 and usage["time_left"] < 0:  # get_usage's marker of a cache failure
        logger.warning("Rate limit cache unavailable; request allowed")
        return None
    return max(1, int(usage["time_left"]))


class RateLimitThrottle(BaseThrottle):
    """DRF throttle over django-ratelimit: one counter per caller and ``group``."""

    group = "api"
    rate_setting = "API_RATE_LIMIT"

    def allow_request(self, request, view) -> bool:
        self._wait = consume(request, group=self.group, rate=rate_for(self.rate_setting))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class APIRateThrottle(RateLimitThrottle):
    """Every API request (installed as the default throttle)."""


class ExecuteRateThrottle(RateLimitThrottle):
    """Agent executions and other expensive actions: a stricter, separate counter."""

    group = "api-execute"
    rate_setting = "API_EXECUTE_RATE_LIMIT"


EXECUTE_THROTTLES = [APIRateThrottle, ExecuteRateThrottle]


def execute_rate_limit(func):
    """Apply the stricter execute limit to a viewset ``@action``; write it above ``@action``::

    @execute_rate_limit
    @action(detail=True, methods=["post"])
    def execute(self, request, pk=None): ...
    """
    kwargs = getattr(func, "kwargs", None)
    if kwargs is None:
        raise TypeError("@execute_rate_limit goes above @action(...)")
    kwargs["throttle_classes"] = EXECUTE_THROTTLES
    return func


class ExecuteRateLimitMixin:
    """For a whole view whose every request is an execution."""

    throttle_classes = EXECUTE_THROTTLES


AUTH_FAILURE_GROUP = "api-auth-failure"


def auth_failures_exceeded(request) -> None:
    """Raise 429 when the client IP has failed authentication too often (checked before a key is)."""
    rate = rate_for("API_AUTH_FAILURE_RATE_LIMIT")
    if not rate:
        return
    try:
        usage = get_usage(request, group=AUTH_FAILURE_GROUP, key=ip_key, rate=rate, increment=False)
    except Exception:
        logger.warning("Rate limit cache unavailable; request allowed", exc_info=True)
        return
    if usage is not None and usage["limit"] and usage["count"] >= usage["limit"]:
        wait = max(1, int(usage["time_left"]))
        raise exceptions.Throttled(
            wait=wait, detail=f"Too many failed authentications from this address; retry in {wait} s."
        )


def auth_failure_record(request) -> None:
    """Count one failed authentication for the client IP."""
    consume(request, group=AUTH_FAILURE_GROUP, rate=rate_for("API_AUTH_FAILURE_RATE_LIMIT"), key=ip_key)
