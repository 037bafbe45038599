"""PostgreSQL: drop ``audit_chain_head(organization id)`` (installed by 0003). ``audit_record`` now locks
the organisation's row through the ORM (``lock_for_write``) and reads the chain head by a separate
plain SELECT; the function existed for a one-statement append that is gone (issue 14). Reversed, the
function is created again exactly as 0003 created it. Nothing on SQLite."""

from django.db import migrations

# The SQL exactly as this migration runs it (history is frozen: a later change is a new migration).
DROP_CHAIN_HEAD_FUNCTION_SQL = "DROP FUNCTION IF EXISTS audit_chain_head(bigint)"
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


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_CHAIN_HEAD_FUNCTION_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN_HEAD_FUNCTION_SQL)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_auditevent_hash_version")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
