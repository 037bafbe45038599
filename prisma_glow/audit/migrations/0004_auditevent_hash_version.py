"""``AuditEvent.hash_version``: how each event's hash was computed.

Every event written before this migration was hashed the version 1 way (``json.dumps`` of the event),
so the new column is 1 for them — and stays the database default, for a row written without it by
code that predates it while a deployment rolls out. New events are written with version 2 (canonical
numbers, ``prisma_glow.audit.canonical``) by the application. On PostgreSQL, adding a column with a
constant default rewrites nothing: the existing rows read the default. Reversed, the column is dropped:
events written with version 2 would then be checked the version 1 way, and flagged unless their JSON
writes the same both ways.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_chain_head_function")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(
                db_default=1,
                default=2,
                editable=False,
                help_text="How the hash was computed (1: before canonical numbers; 2: canonical JSON).",
            ),
        ),
    ]
