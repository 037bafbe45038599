"""Drop django-otp's TOTP and backup-code tables, which kept keys and codes in clear.

Those plugins (``otp_totp``, ``otp_static``) are no longer installed: the devices are this app's own
(0001), with the key encrypted and the codes hashed. The feature was never released, so no device is
carried over: whoever enrolled on a development database enrols again. Dropping the tables (rather than
leaving them) takes the clear secrets out of existing databases; the plugins' rows in
``django_migrations`` go too, so that installing them again would create their tables anew.
Literal SQL, the same on PostgreSQL and SQLite; nothing to undo (the plugins are gone).
"""

from django.db import migrations

DROP = [
    "DROP TABLE IF EXISTS otp_static_statictoken",
    "DROP TABLE IF EXISTS otp_static_staticdevice",
    "DROP TABLE IF EXISTS otp_totp_totpdevice",
    "DELETE FROM django_migrations WHERE app IN ('otp_static', 'otp_totp')",
]


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_devices")]

    operations = [migrations.RunSQL(sql=DROP, reverse_sql=migrations.RunSQL.noop)]
