"""The hand-written statements of the hot path (``prisma_glow.db``) write exactly what ``save()`` writes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from agents.models import Execution
from prisma_glow import db

pytestmark = pytest.mark.django_db


def _execution(agent, **extra) -> Execution:
    return Execution(
        organization_id=agent.organization_id, agent=agent, persona=agent.personas.get(is_active=True),
        provider_kind="offline", model="offline-extractive", input="Ünïcode ' \" \\ %s question",
        source="console", is_test=True, citations=[{"n": 1}], **extra,
    )  # fmt: skip


@pytest.mark.parametrize("only_if", [None, ("1 = %s", [1])], ids=["plain", "conditional"])
def test_insert_writes_what_save_writes(vat_agent, only_if):
    by_orm = Execution.objects.create(**model_to_dict(_execution(vat_agent), exclude=["id"]) | {
        "agent": vat_agent, "persona": vat_agent.personas.get(is_active=True), "organization": vat_agent.organization,
    })  # fmt: skip
    by_insert = _execution(vat_agent)
    assert db.insert(by_insert, only_if=only_if)
    assert by_insert.pk and by_insert.pk != by_orm.pk and not by_insert._state.adding
    assert by_insert.created_at is not None  # auto_now_add stamped
    stored = Execution.objects.get(pk=by_insert.pk)
    skip = {"id", "created_at"}
    assert {k: v for k, v in model_to_dict(stored).items() if k not in skip} == {
        k: v for k, v in model_to_dict(by_orm).items() if k not in skip
    }
    assert stored.created_at == by_insert.created_at


def test_a_conditional_insert_whose_condition_fails_inserts_nothing(vat_agent):
    from agents.runtime.loading import current_stamp, stamp_unchanged
    from prisma_glow.config_stamp import bump

    stale = current_stamp(vat_agent.pk)
    bump([vat_agent.organization_id])
    execution = _execution(vat_agent)
    assert not db.insert(execution, only_if=stamp_unchanged(vat_agent.organization_id, stale))
    assert execution.pk is None and execution._state.adding and not Execution.objects.exists()
    current = current_stamp(vat_agent.pk)
    assert db.insert(execution, only_if=stamp_unchanged(vat_agent.organization_id, current))
    assert Execution.objects.get().pk == execution.pk


def test_update_writes_only_the_named_fields(vat_agent):
    execution = _execution(vat_agent)
    db.insert(execution)
    execution.status, execution.cost, execution.output = "completed", Decimal("0.001234"), "Answer"
    sql, params = db.update(execution, ["status", "cost"])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    stored = Execution.objects.get(pk=execution.pk)
    assert (stored.status, stored.cost, stored.output) == ("completed", Decimal("0.001234"), "")


def test_step_json_is_compressed_with_lz4_on_postgresql():
    """Migration agents 0004: the steps' large JSON columns use lz4 where the server has it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("column compression is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL was built without lz4")
        cursor.execute(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'agents_executionstep'::regclass "
            "AND attname IN ('input', 'output') ORDER BY attname"
        )
        assert cursor.fetchall() == [("input", "l"), ("output", "l")]
