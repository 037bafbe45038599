"""PostgreSQL: compress the steps' large JSON (the messages sent to the model, the passages retrieved)
with lz4 instead of pglz. Every run writes a model call's messages, several kilobytes that PostgreSQL
compresses out of line; lz4 compresses them several times faster (about 0.2 ms of each run's record
in ``bench/execute.py``). Only new values are affected; nothing on SQLite, nor on a PostgreSQL built
without lz4 (the default compression stays)."""

from django.db import migrations

COLUMNS = ("input", "output")


def _lz4_available(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql" and _lz4_available(schema_editor):
        changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION lz4" for column in COLUMNS)
        schema_editor.execute(f"ALTER TABLE agents_executionstep {changes}")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION default" for column in COLUMNS)
        schema_editor.execute(f"ALTER TABLE agents_executionstep {changes}")


class Migration(migrations.Migration):
    dependencies = [("agents", "0003_step_status_valid")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
