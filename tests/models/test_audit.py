"""The audit log is append-only and hash-chained per organisation."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record, audit_verify_chain, snapshot
from tests.factories import ModelProviderFactory, OrganizationFactory
from tests.models.helpers import assert_db_rejects

pytestmark = pytest.mark.django_db


def test_events_cannot_be_updated_or_deleted(org, owner):
    """save() on a stored event, delete(), and queryset update()/delete() all refuse."""
    event = audit_record(organization=org, action="agent.create", actor=owner, after={"name": "A"})
    event.action = "agent.delete"
    with pytest.raises(PermissionError, match="append-only"):
        event.save()
    with pytest.raises(PermissionError, match="append-only"):
        event.delete()
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "agent.create"


def test_chain_links_each_event_to_the_previous_one_per_organization(org, other_org, owner):
    """Each organisation has its own chain; every event points at its predecessor's hash."""
    a1 = audit_record(organization=org, action="a.one", actor=owner)
    b1 = audit_record(organization=other_org, action="b.one")
    a2 = audit_record(organization=org, action="a.two", actor=owner)
    assert a1.prev_hash == "" and b1.prev_hash == ""
    assert a2.prev_hash == a1.hash
    assert a1.actor_label == owner.get_username()
    assert audit_verify_chain(org) == [] and audit_verify_chain(other_org) == []


def test_hash_is_unique():
    """Two rows with the same hash are refused by the database."""
    org = OrganizationFactory()
    event = audit_record(organization=org, action="x")
    assert_db_rejects(
        lambda: AuditEvent.objects.create(organization=org, action="y", at=event.at, hash=event.hash)
    )


def test_snapshot_never_contains_secrets(org):
    """Encrypted columns appear as '(set)' in before/after, never as their value."""
    provider = ModelProviderFactory(
        organization=org, kind="openai_compatible", base_url="https://llm.example.com/v1", api_key="sk-secret"
    )
    data = snapshot(provider)
    assert data["api_key"] == "(set)"
    assert "sk-secret" not in str(data)


def test_organization_with_audit_events_cannot_be_deleted(org):
    """The audit trail outlives every change: an organisation with events is protected."""
    audit_record(organization=org, action="organization.update")
    with pytest.raises(ProtectedError), transaction.atomic():
        org.delete()
    assert AuditEvent.objects.filter(organization=org).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain():
    """Appends from several connections at once queue on the organisation's row: one chain, no fork."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite's in-memory test database is one connection")
    org = OrganizationFactory()

    def append(n: int) -> None:
        try:
            for i in range(5):
                with transaction.atomic():
                    audit_record(organization=org, action=f"thread.{n}.{i}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(4)))
    assert AuditEvent.objects.filter(organization=org).count() == 20
    assert audit_verify_chain(org) == []
