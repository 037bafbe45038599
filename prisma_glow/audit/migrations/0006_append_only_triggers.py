"""The audit log append-only in the database, and the actors who appear in it protected.

PostgreSQL: two row-level ``BEFORE UPDATE`` / ``BEFORE DELETE`` triggers on ``audit_auditevent`` call
``audit_auditevent_append_only()``, which raises (SQLSTATE 42501, insufficient privilege) whatever the
statement — the ORM's own guard (``AuditEvent.save`` / ``delete``, the queryset's ``update`` /
``delete``) is bypassed by raw SQL, a cascade, or a console. ``TRUNCATE`` is not refused by a trigger:
the test runner empties tables with it between transactional tests; production's application role
has no TRUNCATE privilege on the table (docs/security.md, ``manage.py audit_grant_app_role``). The
table's owner can still disable or drop the triggers, which is why production connects as a role that
does not own the tables. Reversed, the triggers and the function are dropped.

SQLite (development) gets no triggers: Django's flush between transactional tests empties SQLite's
tables with ``DELETE``, which a trigger would refuse; the model's guard applies there.

``actor_user`` / ``actor_api_key`` become ``PROTECT`` (were ``SET_NULL``, an UPDATE the triggers now
refuse, and which changed a hashed value): a user or an API key that acted is kept — deactivate the
user, revoke the key. No database change: Django enforces ``on_delete``.
"""

from django.conf import settings
from django.db import migrations, models

# The SQL exactly as this migration runs it (history is frozen: a later change is a new migration).
APPEND_ONLY_SQL = r"""
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'audit events are append-only: ' || TG_OP || ' refused on audit_auditevent',
        ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
"""
DROP_APPEND_ONLY_SQL = r"""
DROP TRIGGER IF EXISTS audit_auditevent_no_update ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_auditevent_no_delete ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_drop_chain_head_function"),
        ("tenancy", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="actor_user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="actor_api_key",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.PROTECT,
                related_name="+",
                to="tenancy.apikey",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
