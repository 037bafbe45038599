"""``/readyz``: 200 when the database, the cache and the task queue answer; 503 naming what failed.

Each failure is real: a PostgreSQL backend terminated by the server, a Redis cache on a closed
port, a missing queue table, a task backend that does not load. Nothing is patched.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import redis
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client
from django_tasks_db.models import DBTaskResult

DB_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
ALL_OK = {"status": "ok", "checks": {"database": "ok", "cache": "ok", "tasks": "ok"}}


def _unavailable(*names: str) -> dict:
    checks = {name: ("unavailable" if name in names else "ok") for name in ("database", "cache", "tasks")}
    return {"status": "unavailable", "checks": checks}


def _readyz(client: Client | None = None, expected: int = 200) -> dict:
    response = (client or Client()).get("/readyz")
    assert response.status_code == expected, response.content
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    return response.json()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ready_when_everything_answers_without_auth_or_rate_limit(db, settings):
    """Anonymous, answered on HEAD too, and never throttled (the API's limit here: 1 a minute)."""
    settings.TASKS = DB_BACKEND
    settings.API_RATE_LIMIT = "1/m"
    client = Client()
    for _ in range(3):
        assert _readyz(client) == ALL_OK
    assert client.head("/readyz").status_code == 200
    assert client.post("/readyz").status_code == 405
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503_and_the_next_probe_reconnects(settings):
    """The server terminates this process's PostgreSQL backend: the database and the queue table are
    unavailable (503, no error text); the following probe opens a new connection and is ready."""
    if connection.vendor != "postgresql":
        pytest.skip("terminating a server-side backend needs PostgreSQL")
    settings.TASKS = DB_BACKEND
    client = Client()
    assert _readyz(client) == ALL_OK
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    killer = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone()[0] is True
    finally:
        killer.close()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert json.loads(response.content) == _unavailable("database", "tasks")
    assert _readyz(client) == ALL_OK


def test_ready_with_a_real_redis_cache(db, settings):
    """The production cache: the probe key goes to Redis, comes back and is removed."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (scripts/test starts redis-server and sets it)")
    settings.TASKS = DB_BACKEND
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    assert _readyz() == ALL_OK
    assert redis.Redis.from_url(url).keys("*readyz*") == []


def test_cache_unreachable_is_503(db, settings):
    """A Redis cache on a port nobody listens on: only the cache is unavailable."""
    settings.TASKS = DB_BACKEND
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    assert _readyz(expected=503) == _unavailable("cache")


def test_missing_queue_table_is_503_only_for_the_database_backend(db, settings):
    """The queue table is gone (the test's transaction restores it): the database backend's queue is
    unavailable; a backend that runs tasks in-process does not need the table."""
    settings.TASKS = DB_BACKEND
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(DBTaskResult._meta.db_table)}")
    assert _readyz(expected=503) == _unavailable("tasks")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    assert _readyz() == ALL_OK


def test_a_task_backend_that_does_not_load_is_503(db, settings):
    settings.TASKS = {"default": {"BACKEND": "no_such_package.Backend"}}
    assert _readyz(expected=503) == _unavailable("tasks")


def test_probes_answer_any_host_over_plain_http(db, settings):
    """A load balancer probes an instance by its own address over plain HTTP. Both probes answer it in
    production settings; every other page still refuses the unknown Host or redirects to HTTPS."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["glow.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.TASKS = DB_BACKEND
    client = Client()
    for host in ("10.0.3.7:8000", "localhost:8000", "glow.example.com"):
        assert client.get("/readyz", HTTP_HOST=host).json() == ALL_OK
        assert client.get("/healthz", HTTP_HOST=host).json() == {"status": "ok"}
    assert client.get("/admin/", HTTP_HOST="10.0.3.7:8000").status_code == 400
    assert client.get("/admin/", HTTP_HOST="glow.example.com").status_code == 301
