"""``Chunk.screening``: the guardrail screening stored with each chunk (``guardrails.screening``).

Existing chunks have none: agent runs scan them live, as before, until ``manage.py screen_chunks``
screens them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0006_search_index_without_pending_list")]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="screening",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
    ]
