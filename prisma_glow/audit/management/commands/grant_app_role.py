"""``manage.py grant_app_role ROLE``: give the application's PostgreSQL role what it needs, and no more.

Production connects as two roles (docs/security.md): the one that owns the tables runs the
migrations and this command; the application (web and worker) connects as ROLE, which owns nothing —
an owner could disable the audit log's triggers or drop them. ROLE may read and write every table of
the schema, but only read and append audit events and the agent each belongs to: no UPDATE, DELETE
or TRUNCATE on ``audit_auditevent`` and ``audit_auditeventagent``. Idempotent: run it after every ``migrate`` (tables added since get their grants).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

#: The audit log's tables: SELECT and INSERT only.
AUDIT_TABLES = ("audit_auditevent", "audit_auditeventagent")


class Command(BaseCommand):
    help = (
        "PostgreSQL: grant ROLE (the application's login, which must not own the tables) SELECT, INSERT, "
        "UPDATE and DELETE on every table of the current schema, and only SELECT and INSERT on audit "
        "events. Run as the tables' owner, after migrate."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", metavar="ROLE", help="The application's database role.")

    def handle(self, *args, role: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role is for PostgreSQL (DATABASE_URL); SQLite has no roles.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            found = cursor.fetchone()
            if found is None:
                raise CommandError(
                    f"No database role '{role}': create it first (CREATE ROLE {role} LOGIN PASSWORD …)."
                )
            cursor.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = %s",
                [role],
            )
            (owned,) = cursor.fetchone()
            cursor.execute("SELECT current_schema()")
            (schema,) = cursor.fetchone()
        if found[0] or owned:
            raise CommandError(
                f"Role '{role}' is a superuser or owns tables: it could disable the audit log's triggers. "
                "The application needs a role that owns nothing."
            )
        name, schema = connection.ops.quote_name(role), connection.ops.quote_name(schema)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {name}")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {name}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {name}")
            for table in AUDIT_TABLES:
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {name}, PUBLIC")
        self.stdout.write(
            f"Granted '{role}' read and write on the schema's tables, read and append only on "
            f"{', '.join(AUDIT_TABLES)}."
        )
