"""The run's record (``agents.runtime.record``) hashes its audit event the version 2 way, in a chain
that carries extreme numbers."""

from __future__ import annotations

import pytest

from agents.runtime import execute
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record, audit_verify_chain
from tests.platform.test_audit_hash import EXTREMES

pytestmark = pytest.mark.django_db


def test_an_agent_run_after_extreme_events_keeps_the_chain_verified(vat_agent, editor):
    """The run's record appends a version 2 event after events carrying extreme numbers; the whole
    chain verifies."""
    audit_record(organization=vat_agent.organization, action="x.extremes", after=EXTREMES)
    execution = execute(vat_agent, "What must an invoice show?", actor=editor, source="api")
    assert execution.status == "completed", execution.error
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert event.hash_version == 2
    assert audit_verify_chain(vat_agent.organization) == []
