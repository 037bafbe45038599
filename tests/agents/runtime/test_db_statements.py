"""How the run record's tables are stored (its statements are the ORM's since issue 14)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_step_json_is_compressed_with_lz4_on_postgresql():
    """Migration agents 0004: the steps' large JSON columns use lz4 where the server has it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("column compression is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL was built without lz4")
        cursor.execute(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'agents_executionstep'::regclass "
            "AND attname IN ('input', 'output') ORDER BY attname"
        )
        assert cursor.fetchall() == [("input", "l"), ("output", "l")]
