"""Every API key expires (issue 16, API key policy).

Keys created before the policy had no expiry. They get one at the migration's time plus 90 days (the
default of PRISMA_GLOW_API_KEY_MAX_DAYS, written here literally: a migration never reads settings
that may change): a client whose key is older than 90 days keeps working for a full period and sees
the expiry warning for the last 14 days, instead of losing access the moment the release is deployed.
Frozen: the historical model and literal values only.
"""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

EXISTING_KEYS_DAYS = 90


def give_existing_keys_an_expiry(apps, schema_editor):
    APIKey = apps.get_model("tenancy", "APIKey")
    APIKey.objects.filter(expires_at__isnull=True).update(
        expires_at=timezone.now() + timedelta(days=EXISTING_KEYS_DAYS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_organization_config_stamp"),
    ]

    operations = [
        migrations.RunPython(give_existing_keys_an_expiry, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="apikey",
            name="expires_at",
            field=models.DateTimeField(help_text="When the key stops working; every key has one."),
        ),
        migrations.AlterField(
            model_name="apikey",
            name="last_used_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Recorded at most once a minute (prisma_glow.api.authentication).",
                null=True,
            ),
        ),
    ]
