"""Migrations are history: frozen SQL, no application code, and every one reversible to zero.

A migration that imported its SQL from an application module changed what it does whenever that
module changed (issue 14); each now carries the SQL it runs literally.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(
    path
    for app in ("evaluations", "agents", "personas", "tools", "guardrails", "knowledge", "prisma_glow")
    for path in (ROOT / app).rglob("migrations/[0-9]*.py")
)
#: What Django itself writes into a migration for a field: its class, a default or an upload_to
#: callable. Referenced by name, never run for its SQL or behaviour.
FIELD_REFERENCES = {"knowledge.models", "prisma_glow.crypto", "prisma_glow.config_stamp"}
#: Standard library modules a migration may use: values (decimal, uuid, datetime), a data migration's
#: literal patterns (re) and the JSON it reads and writes.
STANDARD_LIBRARY = {"decimal", "uuid", "datetime", "json", "re", "hashlib", "json.encoder"}
#: The apps whose migrations the round trip takes back to zero, dependants first.
OUR_APPS = (
    "evaluations",
    "accounts",
    "knowledge",
    "agents",
    "personas",
    "tools",
    "guardrails",
    "worker",
    "audit",
    "tenancy",
)


def test_there_are_migrations_to_check():
    assert len(MIGRATIONS) > 20


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_migration_imports_no_application_code(path):
    """Only Django, the standard library's decimal, uuid, datetime, json and re (a data migration's
    values, patterns and JSON), and the field references Django writes itself."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.module in ("django.db", "django.conf", "__future__", *STANDARD_LIBRARY) or (
                node.module or ""
            ).startswith("django."), f"{path.name}: from {node.module} import …"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                assert name.startswith("django") or name in FIELD_REFERENCES | STANDARD_LIBRARY, (
                    f"{path.name}: import {name}"
                )


def test_the_live_search_function_is_the_one_the_latest_migration_installs():
    """A change to the live SQL without a migration would leave databases on the old function."""
    from importlib import import_module

    from knowledge.search.postgres import SEARCH_FUNCTION_SQL

    latest = import_module("knowledge.migrations.0012_search_function_from_rules")
    assert SEARCH_FUNCTION_SQL == latest.SEARCH_FUNCTION_SQL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_migration_applies_forward_and_back_to_zero_on_postgresql(tmp_path):
    """On a database of its own: all migrations forward, every app of ours back to zero (each reverse
    SQL runs), then forward again, with no error and no pending model change."""
    if connection.vendor != "postgresql":
        pytest.skip("the round trip runs the PostgreSQL SQL the migrations carry")
    name = f"{connection.settings_dict['NAME']}_roundtrip"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    s = connection.settings_dict
    password = f":{quote(s['PASSWORD'], safe='')}" if s.get("PASSWORD") else ""
    url = (
        f"postgres://{quote(s['USER'], safe='')}{password}@{s.get('HOST') or '127.0.0.1'}:{s['PORT']}/{name}"
    )
    env = {**os.environ, "DATABASE_URL": url, "PRISMA_GLOW_VAR_DIR": str(tmp_path)}

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    try:
        manage("migrate", "--noinput", "-v", "0")
        for app in OUR_APPS:
            manage("migrate", app, "zero", "--noinput", "-v", "0")
        plan = manage("showmigrations", *OUR_APPS)
        assert "[X]" not in plan, plan
        manage("migrate", "--noinput", "-v", "0")
        assert "[ ]" not in manage("showmigrations", *OUR_APPS)
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_the_audit_chain_head_function_is_dropped():
    """Audit 0005 drops 0003's ``audit_chain_head``: ``audit_record`` locks the organisation through the
    ORM and reads the head by a plain SELECT (issue 14), and no hand-written function is left behind."""
    if connection.vendor != "postgresql":
        pytest.skip("the function was PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('audit_chain_head(bigint)')")
        assert cursor.fetchone()[0] is None
