"""agents 0005 renames the retrieval steps already recorded: dropped / flagged instead of blocked / warned."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from tests.factories import ExecutionFactory, ExecutionStepFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("agents.migrations.0005_step_dropped_flagged")


def test_old_retrieval_steps_are_renamed_and_a_blocked_run_stays_blocked():
    run = ExecutionFactory(status="completed")
    step = lambda **kw: ExecutionStepFactory(execution=run, **kw)  # noqa: E731
    dropping = step(kind="guardrail", status="blocked", input={"stage": "retrieval", "action": "block"})
    flagging = step(kind="guardrail", status="warned", input={"stage": "retrieval", "action": "warn"})
    redacting = step(kind="guardrail", status="warned", input={"stage": "retrieval", "action": "redact"})
    search_dropped = step(
        kind="retrieval", status="warned", output={"dropped": [{"chunk_id": 1}], "passages": []}
    )
    search_flagged = step(
        kind="retrieval", status="warned", output={"dropped": [], "passages": [{"flagged": True}]}
    )
    blocked_run = ExecutionFactory(status="blocked")
    input_block = ExecutionStepFactory(
        execution=blocked_run, kind="guardrail", status="blocked", input={"stage": "input"}
    )
    migration.forwards(apps, None)
    statuses = lambda *rows: [type(r).objects.get(pk=r.pk).status for r in rows]  # noqa: E731
    rows = (dropping, flagging, redacting, search_dropped, search_flagged, input_block)
    assert statuses(*rows) == ["dropped", "flagged", "warned", "dropped", "flagged", "blocked"]
    migration.backwards(apps, None)
    assert statuses(*rows) == ["blocked", "warned", "warned", "warned", "warned", "blocked"]
