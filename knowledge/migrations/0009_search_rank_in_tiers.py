"""PostgreSQL: ``knowledge_search`` ranks each candidate in the tier that finds it, instead of reading
every candidate again to rank the union (see ``knowledge.search.postgres.SEARCH_FUNCTION_SQL``). Same
signature and the same rows for every input; only the plan changed. Migrating back keeps the new body,
which the previous code calls the same way. Nothing on SQLite."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from knowledge.search import postgres

        postgres.install_search_function(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0008_search_function")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
