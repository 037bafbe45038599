"""The audit log is append-only and hash-chained per organisation."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext

from prisma_glow.audit.context import current_ip
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import _chain_head, audit_record, audit_verify_chain, snapshot
from tests.factories import ModelProviderFactory, OrganizationFactory
from tests.support.models import assert_db_rejects

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
                if n % 2:  # inside the caller's transaction
                    with transaction.atomic():
                        audit_record(organization=org, action=f"thread.{n}.{i}")
                else:  # in its own (as the agent runtime's record, see tests/agents/runtime)
                    audit_record(organization=org, action=f"thread.{n}.{i}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(4)))
    assert AuditEvent.objects.filter(organization=org).count() == 20
    assert audit_verify_chain(org) == []


def test_hash_is_the_sha256_of_the_events_canonical_json(org, owner):
    """The hash covers every field, the hash version and the link, as sorted compact JSON with numbers
    by their value (hash version 2, ``AuditEvent.compute_hash``)."""
    import hashlib

    first = audit_record(organization=org, action="agent.create", actor=owner, after={"name": "Ä", "n": 1})
    token = current_ip.set("10.0.0.1")  # the request's address, as the middleware sets it
    try:
        event = audit_record(
            organization=org, action="agent.update", actor=owner, before={"b": [1, None, 1.5e300, 2.0, -0.0]}
        )
    finally:
        current_ip.reset(token)
    assert event.hash_version == 2
    canonical = (
        '{"action":"agent.update","actor_api_key":null,"actor_label":"' + owner.get_username()
        + '","actor_user":' + str(owner.pk) + ',"after":null,"at":"' + event.at.isoformat()
        + '","before":{"b":[1,null,15' + "0" * 299 + ',2,0]},"hash_version":2,"ip":"10.0.0.1",'
        + '"object_id":"","object_repr":"","object_type":"","organization":' + str(org.pk)
        + ',"prev_hash":"' + first.hash + '"}'
    )  # fmt: skip
    assert event.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_chain_head_of_a_quiet_organisation_is_one_index_probe(org, other_org):
    """Finding an organisation's last event must not walk back over the events other organisations
    appended since (through the primary key, that grew with the whole log)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    audit_record(organization=org, action="quiet.first")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (organization_id, actor_label, action, object_type, object_id, "
            "object_repr, at, prev_hash, hash) SELECT %s, '', 'busy', '', '', '', now(), '', md5(g::text) "
            "|| md5((g + 1)::text) FROM generate_series(1, 5000) AS g",
            [other_org.pk],
        )
        cursor.execute("ANALYZE audit_auditevent")
    # The statement audit_record itself runs to read the head: the lock first, then the read.
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        assert _chain_head(org) != ""
    lock, read = (q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"])
    assert "tenancy_organization" in lock and "FOR NO KEY UPDATE" in lock and "audit_auditevent" in read
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {read}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else __import__("json").loads(plan)
    scan = plan[0]["Plan"]["Plans"][0]
    assert scan.get("Index Name") == "audit_chain_idx", scan
    assert scan.get("Rows Removed by Filter", 0) == 0


@pytest.mark.parametrize("ip", ["2001:DB8:0:0:0:0:0:1", "::FFFF:192.0.2.1", "192.0.2.10"])
def test_an_ip_in_any_spelling_is_hashed_as_stored(org, ip):
    """The column stores an IPv6 address in canonical form; the hash must cover that form, or the
    chain would look broken once the event is read back."""
    token = current_ip.set(ip)  # the request's address, as the middleware sets it
    try:
        audit_record(organization=org, action="login")
        audit_record(organization=org, action="agent.execute")
    finally:
        current_ip.reset(token)
    assert audit_verify_chain(org) == []


def test_the_address_comes_only_from_the_request_context(org):
    """``audit_record`` takes no address: the request context (``current_ip``) is the one way in."""
    with pytest.raises(TypeError):
        audit_record(organization=org, action="login", ip="192.0.2.10")
    token = current_ip.set("192.0.2.10")
    try:
        event = audit_record(organization=org, action="login")
    finally:
        current_ip.reset(token)
    assert event.ip == "192.0.2.10"
    assert audit_record(organization=org, action="logout").ip is None
    assert audit_verify_chain(org) == []
