"""PostgreSQL: ``audit_chain_head(organization id)``, the lock on the organisation's row and the read of
its chain head in one call, so that an event can be appended by a single statement. Nothing on SQLite."""

from django.db import migrations

# The SQL exactly as this migration runs it (history is frozen: a later change to the live SQL is a
# new migration, never an edit here).
CHAIN_HEAD_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION audit_chain_head(org bigint) RETURNS varchar
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM 1 FROM tenancy_organization WHERE id = org FOR NO KEY UPDATE;
    RETURN coalesce(
        (SELECT hash FROM audit_auditevent WHERE organization_id = org ORDER BY id DESC LIMIT 1), ''
    );
END
$$
"""
DROP_CHAIN_HEAD_FUNCTION_SQL = 'DROP FUNCTION IF EXISTS audit_chain_head(bigint)'


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN_HEAD_FUNCTION_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_CHAIN_HEAD_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head_index")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
