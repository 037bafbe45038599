"""PostgreSQL: the whole candidate search as one PL/pgSQL function, ``knowledge_search``, whose plan
is cached for the session instead of planned on every search (about 0.5 ms of each search at
100,000 chunks), with the candidate tiers of ``knowledge.search.query.tiers`` written out in it.
The per-tier function ``knowledge_search_tier`` it replaces stays installed for this release, so
that processes still running the previous code keep searching during a rolling deploy; a later
migration drops it. Nothing on SQLite."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from knowledge.search import postgres

        postgres.install_search_function(schema_editor)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from knowledge.search import postgres

        postgres.uninstall_search_function(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0007_chunk_screening")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
