"""Tampering with the audit log, as the owner of its table could: the tests that prove it is found."""

from __future__ import annotations

from django.db import connection


def tamper_audit(sql: str, params=()) -> None:
    """Run ``sql`` with the append-only triggers of ``audit_auditevent`` disabled (audit migration 0006;
    SQLite has none). The foreign keys' deferred checks of rows inserted in the test's transaction run
    first: PostgreSQL alters no table with checks pending."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
