"""PostgreSQL: the full-text GIN index without its pending list (``fastupdate = off``).

With the default pending list, rows inserted since the last vacuum are kept in an unsorted list that
every search scans in full: right after a large upload, searches at 100,000 chunks took 13 ms at the
median instead of 4.5 ms, until autovacuum merged the list. Knowledge is written in background
tasks and read on every agent run, so each insertion now updates the index directly. Nothing on
SQLite.
"""

from django.db import migrations

INDEX = "knowledge_chunk_search_gin"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX {INDEX} SET (fastupdate = off)")
        # What is already in the pending list moves into the index now.
        schema_editor.execute(f"SELECT gin_clean_pending_list('{INDEX}'::regclass)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX {INDEX} RESET (fastupdate)")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0005_search_tier_function_plpgsql")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
