import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """``Execution.replay_of``: the execution a replay re-runs (``agents.replay``)."""

    dependencies = [
        ("agents", "0011_release_backfill"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="replay_of",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replays",
                to="agents.execution",
            ),
        ),
    ]
