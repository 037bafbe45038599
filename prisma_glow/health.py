"""Probes for load balancers and orchestrators: ``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` answers as long as the process serves requests and touches nothing else: restarting
an instance because the database is down would not help. ``/readyz`` says whether this instance
can serve now: it checks the database (a query), the cache (a probe key written and read back) and
the task queue (for the database backend, a query on its table), and answers 503 naming what
failed, so that a load balancer sends traffic elsewhere. Neither needs authentication or is rate
limited (the API's limits are DRF throttles); the reason for a failure goes to the log, never into
the answer.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import nullcontext

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import JsonResponse
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from django_tasks_db import DatabaseBackend

logger = logging.getLogger("prisma_glow.health")

CACHE_PROBE_SECONDS = 10


def healthz(request):
    """Liveness probe for load balancers: answers without touching the database."""
    return JsonResponse({"status": "ok"})


def check_database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    # A key of its own per probe: concurrent probes (several load balancers) never see each other's.
    key, value = f"readyz:{secrets.token_hex(8)}", secrets.token_hex(8)
    cache.set(key, value, timeout=CACHE_PROBE_SECONDS)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return the probe value it was just given")
    finally:
        cache.delete(key)


def check_tasks() -> None:
    """The configured task backend loads; with the database backend, its queue table answers.

    Backends that run tasks in the request's process (immediate, dummy) have nothing else to reach.
    """
    backend = task_backends[DEFAULT_TASK_BACKEND_ALIAS]
    if isinstance(backend, DatabaseBackend):
        from django_tasks_db.models import DBTaskResult

        alias = DBTaskResult.objects.db
        # Inside a transaction (tests, ATOMIC_REQUESTS) a savepoint keeps a failed query from
        # aborting it; in autocommit a plain query suffices (and takes no write lock on SQLite).
        in_transaction = connections[alias].in_atomic_block
        with transaction.atomic(using=alias) if in_transaction else nullcontext():
            DBTaskResult.objects.exists()


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "tasks": check_tasks,
}


def _close_broken_database_connections() -> None:
    """A connection the server dropped fails every later query; close it so the next probe (or
    request) opens a new one instead of staying unready after the database is back."""
    for connection in connections.all(initialized_only=True):
        if (
            connection.connection is not None
            and not connection.in_atomic_block
            and not connection.is_usable()
        ):
            connection.close()


@require_safe
def readyz(request):
    """Readiness probe: 200 ``{"status": "ok", "checks": {…}}`` or 503 naming each part that failed."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception:
            logger.warning("Readiness check %r failed", name, exc_info=True)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    ready = all(result == "ok" for result in results.values())
    if not ready:
        _close_broken_database_connections()
    response = JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503
    )
    add_never_cache_headers(response)
    return response


PROBES: dict[str, Callable] = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes first, before anything reads the Host header.

    A load balancer or an orchestrator addresses an instance by its own address (``Host: 10.0.3.7:8000``),
    which ``ALLOWED_HOSTS`` rightly does not name: further down, ``CommonMiddleware`` would answer 400
    and every probe would fail on a healthy instance. The probes read nothing from the request, so
    answering them for any Host gives nothing away."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        return probe(request) if probe is not None else self.get_response(request)
