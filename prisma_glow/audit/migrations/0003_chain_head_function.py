"""PostgreSQL: ``audit_chain_head(organization id)``, the lock on the organisation's row and the read of
its chain head in one call (see ``prisma_glow.audit.services.CHAIN_HEAD_FUNCTION_SQL``), so that an
event can be appended by a single statement. Nothing on SQLite."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from prisma_glow.audit.services import CHAIN_HEAD_FUNCTION_SQL

        schema_editor.execute(CHAIN_HEAD_FUNCTION_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from prisma_glow.audit.services import DROP_CHAIN_HEAD_FUNCTION_SQL

        schema_editor.execute(DROP_CHAIN_HEAD_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head_index")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
