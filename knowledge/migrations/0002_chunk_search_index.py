"""Full-text index over chunks, one per database engine.

PostgreSQL: a ``search_vector tsvector`` column on ``knowledge_chunk`` (heading path weighted A, text
weighted B) in the text-search configuration of the chunk's knowledge base, kept current by a trigger,
with a GIN index. SQLite: an external-content FTS5 table ``knowledge_chunk_fts`` (porter stemming)
kept in sync by triggers. Neither exists in Django's model state, so ``makemigrations`` ignores them
and the ORM never loads the vector.

Note for later migrations on SQLite: Django rebuilds a table to alter it, which drops its triggers;
a migration that alters ``knowledge_chunk`` must run ``knowledge.search.sqlite.install`` again.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from knowledge.search import postgres, sqlite

    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        postgres.install(schema_editor)
    elif vendor == "sqlite":
        sqlite.install(schema_editor)


def backwards(apps, schema_editor):
    from knowledge.search import postgres, sqlite

    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        postgres.uninstall(schema_editor)
    elif vendor == "sqlite":
        sqlite.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
