"""``AuditEventAgent``: which agent each audit event belongs to, for the audit explorer's agent filter.

A side table rather than a column of ``audit_auditevent``: filling a column for the events already
written would be an UPDATE, which the append-only triggers (0006) refuse — and must. New events get
their row from ``audit_record`` (``prisma_glow.audit.services.agent_of``: the event's object is the
agent, or has a foreign key to it, or to a row that has one). The events written before this migration
are backfilled here, from what they stored:

- the object is an agent (``object_type`` ``agents.agent``): its id;
- else an integer ``agent_id`` in ``after`` or ``before`` (the snapshot of a persona, an assignment, a
  learning example, a budget…: ``snapshot`` names a foreign key by its column);
- else an integer ``agent`` in ``after`` or ``before`` (a run's ``agent.execute``, a ``release.create``).

An index on ``(organization_id, action, at DESC)`` serves the explorer's action filter and its list of
the actions a log holds (DDL: the triggers are not involved). Literal SQL per database (history is
frozen). On PostgreSQL the table is append-only like the log:
``BEFORE UPDATE`` / ``BEFORE DELETE`` row triggers raise (SQLSTATE 42501). Reversed, the table and
its triggers are dropped; the events are untouched.
"""

from django.db import migrations, models

BACKFILL_POSTGRESQL = r"""
INSERT INTO audit_auditeventagent (event_id, agent_id)
SELECT id, agent FROM (
    SELECT e.id, CASE
        WHEN e.object_type = 'agents.agent' AND e.object_id ~ '^[0-9]{1,18}$' THEN e.object_id::bigint
        WHEN (e.after ->> 'agent_id') ~ '^[0-9]{1,18}$' THEN (e.after ->> 'agent_id')::bigint
        WHEN (e.before ->> 'agent_id') ~ '^[0-9]{1,18}$' THEN (e.before ->> 'agent_id')::bigint
        WHEN (e.after ->> 'agent') ~ '^[0-9]{1,18}$' THEN (e.after ->> 'agent')::bigint
        WHEN (e.before ->> 'agent') ~ '^[0-9]{1,18}$' THEN (e.before ->> 'agent')::bigint
    END AS agent
    FROM audit_auditevent e
) found
WHERE agent IS NOT NULL;
"""

BACKFILL_SQLITE = r"""
INSERT INTO audit_auditeventagent (event_id, agent_id)
SELECT id, agent FROM (
    SELECT e.id, CASE
        WHEN e.object_type = 'agents.agent' AND e.object_id <> '' AND e.object_id NOT GLOB '*[^0-9]*'
            THEN CAST(e.object_id AS INTEGER)
        WHEN json_type(e.after, '$.agent_id') = 'integer' THEN json_extract(e.after, '$.agent_id')
        WHEN json_type(e.before, '$.agent_id') = 'integer' THEN json_extract(e.before, '$.agent_id')
        WHEN json_type(e.after, '$.agent') = 'integer' THEN json_extract(e.after, '$.agent')
        WHEN json_type(e.before, '$.agent') = 'integer' THEN json_extract(e.before, '$.agent')
    END AS agent
    FROM audit_auditevent e
) found
WHERE agent IS NOT NULL;
"""

APPEND_ONLY_POSTGRESQL = r"""
CREATE OR REPLACE FUNCTION audit_auditeventagent_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'audit events'' agents are append-only: ' || TG_OP || ' refused on audit_auditeventagent',
        ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_auditeventagent_no_update BEFORE UPDATE ON audit_auditeventagent
    FOR EACH ROW EXECUTE FUNCTION audit_auditeventagent_append_only();
CREATE TRIGGER audit_auditeventagent_no_delete BEFORE DELETE ON audit_auditeventagent
    FOR EACH ROW EXECUTE FUNCTION audit_auditeventagent_append_only();
"""

DROP_APPEND_ONLY_POSTGRESQL = r"""
DROP TRIGGER IF EXISTS audit_auditeventagent_no_update ON audit_auditeventagent;
DROP TRIGGER IF EXISTS audit_auditeventagent_no_delete ON audit_auditeventagent;
DROP FUNCTION IF EXISTS audit_auditeventagent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKFILL_POSTGRESQL)
        schema_editor.execute(APPEND_ONLY_POSTGRESQL)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(BACKFILL_SQLITE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY_POSTGRESQL)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_append_only_triggers")]

    operations = [
        migrations.CreateModel(
            name="AuditEventAgent",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        on_delete=models.deletion.CASCADE,
                        primary_key=True,
                        related_name="agent_link",
                        serialize=False,
                        to="audit.auditevent",
                    ),
                ),
                ("agent_id", models.BigIntegerField(db_index=True)),
            ],
            options={"verbose_name": "audit event's agent"},
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["organization", "action", "-at"], name="audit_org_action_idx"),
        ),
    ]
