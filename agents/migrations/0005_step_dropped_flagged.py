"""Steps: ``dropped`` and ``flagged`` for passages a retrieval guardrail withheld from the model or let
through marked as suspect, instead of ``blocked`` / ``warned`` (``blocked`` now means only that a
guardrail ended the run). The steps already recorded are renamed the same way: a retrieval guardrail's
``blocked`` becomes ``dropped``, its ``warned`` becomes ``flagged`` unless its action redacts or appends;
a knowledge search that dropped passages becomes ``dropped``, one that only flagged some ``flagged``."""

from django.db import migrations, models

NOT_A_FLAG = ("redact", "append")  # actions that change the text without marking it as suspect


def forwards(apps, schema_editor):
    Step = apps.get_model("agents", "ExecutionStep")
    retrieval_guards = Step.objects.filter(kind="guardrail", input__stage="retrieval")
    retrieval_guards.filter(status="blocked").update(status="dropped")
    retrieval_guards.filter(status="warned").exclude(input__action__in=NOT_A_FLAG).update(status="flagged")
    searches = Step.objects.filter(kind="retrieval", status="warned").only("pk", "output")
    dropped, flagged = [], []
    for step in searches.iterator(chunk_size=500):
        output = step.output if isinstance(step.output, dict) else {}
        if output.get("dropped"):
            dropped.append(step.pk)
        elif any(isinstance(p, dict) and p.get("flagged") for p in output.get("passages") or []):
            flagged.append(step.pk)
    for status, pks in (("dropped", dropped), ("flagged", flagged)):
        for start in range(0, len(pks), 500):
            Step.objects.filter(pk__in=pks[start : start + 500]).update(status=status)


def backwards(apps, schema_editor):
    Step = apps.get_model("agents", "ExecutionStep")
    Step.objects.filter(kind="guardrail", status="dropped").update(status="blocked")
    Step.objects.filter(status__in=["dropped", "flagged"]).update(status="warned")


class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0004_step_lz4_compression'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='executionstep',
            name='step_status_valid',
        ),
        migrations.AlterField(
            model_name='executionstep',
            name='status',
            field=models.CharField(choices=[('ok', 'OK'), ('warned', 'Warned'), ('flagged', 'Flagged'), ('dropped', 'Dropped'), ('blocked', 'Blocked'), ('failed', 'Failed')], default='ok', max_length=10),
        ),
        migrations.AddConstraint(
            model_name='executionstep',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['ok', 'warned', 'flagged', 'dropped', 'blocked', 'failed'])), name='step_status_valid'),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
