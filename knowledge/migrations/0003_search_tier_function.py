"""PostgreSQL: the ``knowledge_search_tier`` function that gathers one capped tier of search
candidates with sequential scans disabled (see ``knowledge.search.postgres``). Nothing on SQLite."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from knowledge.search import postgres

        postgres.install_tier_function(schema_editor)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from knowledge.search import postgres

        postgres.uninstall_tier_function(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_chunk_search_index")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
