"""ASVS 5.0 chapter V16 (security logging and error handling): the audit log cannot be altered.

The database itself refuses UPDATE and DELETE on audit events (PostgreSQL triggers, audit migration
0006), ``manage.py verify_audit`` finds a tampered chain, and the application's database role may
only read and append audit events (``manage.py grant_app_role``).
"""

from __future__ import annotations

import logging
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import Client
from django.utils import timezone

from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import BROKEN_HASH, BROKEN_LINK, audit_record, audit_verify_chain
from tests.factories import APIKeyFactory, InvitationFactory, UserFactory
from tests.support.admin import login
from tests.support.audit import tamper_audit

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the triggers and roles are PostgreSQL's; SQLite (development) has neither (audit migration 0006)",
)


def _chain(org, n=4, *, actor=None):
    return [
        audit_record(organization=org, action=f"agent.update.{i}", actor=actor, after={"n": i})
        for i in range(n)
    ]


def _verify(*args) -> tuple[int, str]:
    """``verify_audit``'s exit status and output."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


# --- The database refuses changes ------------------------------------------------------------------


@postgresql_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'agent.delete' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_user_id = NULL WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_database_refuses_update_and_delete_of_an_event(org, owner, sql):
    """ASVS 5.0 V16.4.2: logs are protected from modification — raw SQL, past the ORM's guard, cannot
    update or delete an audit event."""
    event, *_ = _chain(org, 2, actor=owner)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action=event.action, actor_user=owner).exists()
    assert audit_verify_chain(org) == []


def test_user_or_api_key_that_acted_cannot_be_deleted(org, owner):
    """ASVS 5.0 V16.4.2: deleting an actor would rewrite their events (a hashed column): it is
    refused, on every database; the user is deactivated, the key revoked, instead."""
    key = APIKeyFactory(organization=org)
    audit_record(organization=org, action="agent.create", actor=owner)
    audit_record(organization=org, action="agent.create", actor=key)
    with pytest.raises(ProtectedError), transaction.atomic():
        owner.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        key.delete()
    bystander = UserFactory()
    bystander.delete()  # who never acted is deleted as before
    assert audit_verify_chain(org) == []


# --- verify_audit ----------------------------------------------------------------------------------


def test_verify_audit_passes_on_intact_chains_and_says_how_many_events(org, other_org, owner):
    """ASVS 5.0 V16.4.2: the log's integrity can be checked — intact chains exit 0 with their counts."""
    _chain(org, 3, actor=owner)
    _chain(other_org, 2)
    audit_record(organization=None, action="system.start")
    status, output = _verify()
    assert status == 0
    assert "demo-firm: 3 events, intact" in output
    assert "other-firm: 2 events, intact" in output
    assert "(no organisation): 1 events, intact" in output
    assert "All audit chains intact: 3 chains, 6 events." in output


@pytest.mark.parametrize("tampering", ["changed", "deleted", "reordered", "unknown-version"])
def test_verify_audit_finds_a_tampered_chain_and_exits_non_zero(org, other_org, owner, tampering):
    """ASVS 5.0 V16.4.2: a row changed, removed or moved with the triggers disabled is found: the first
    broken event of the organisation is printed, the command exits 1, other chains are still intact."""
    events = _chain(org, 5, actor=owner)
    _chain(other_org, 2)
    if tampering == "changed":
        tamper_audit("UPDATE audit_auditevent SET after = %s WHERE id = %s", ['{"n": 99}', events[1].pk])
        first, reason = events[1], BROKEN_HASH
    elif tampering == "deleted":
        tamper_audit("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
        first, reason = events[3], BROKEN_LINK
    elif tampering == "reordered":  # events 1 and 2 swap places (their ids)
        a, b = events[1].pk, events[2].pk
        tamper_audit(
            "UPDATE audit_auditevent SET id = CASE id WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
            [a, -a, a, a, b],
        )
        tamper_audit("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a, b])
        tamper_audit("UPDATE audit_auditevent SET id = %s WHERE id = %s", [b, -a])
        first, reason = events[1], BROKEN_LINK  # id a now holds event 2, linked to event 1
    else:
        tamper_audit("UPDATE audit_auditevent SET hash_version = 7 WHERE id = %s", [events[0].pk])
        first, reason = events[0], BROKEN_HASH
    status, output = _verify()
    assert status == 1
    assert f"demo-firm: BROKEN at event {first.pk} " in output
    assert reason in output
    assert output.count("BROKEN") == 1
    assert "other-firm: 2 events, intact" in output
    assert "1 of 3 audit chains broken" in output


def test_verify_audit_org_scopes_the_check(org, other_org, owner):
    """ASVS 5.0 V16.4.2: --org checks that organisation's chain alone."""
    events = _chain(org, 3, actor=owner)
    _chain(other_org, 2)
    tamper_audit("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [events[0].pk])
    status, output = _verify("--org", "other-firm")
    assert status == 0 and "demo-firm" not in output
    assert "All audit chains intact: 1 chains, 2 events." in output
    status, output = _verify("--org", "demo-firm")
    assert status == 1 and f"demo-firm: BROKEN at event {events[0].pk} " in output


def test_verify_audit_with_an_unknown_slug_says_so_and_exits_non_zero(org):
    status, output = _verify("--org", "no-such-firm")
    assert status == 2
    assert "Unknown organisation 'no-such-firm'" in output


# --- The application's database role ---------------------------------------------------------------


@postgresql_only
def test_app_role_may_append_and_read_audit_events_but_not_change_them_nor_the_triggers(org, owner):
    """ASVS 5.0 V16.4.2: the application connects as a role that owns no table (grant_app_role): it
    appends and reads events, and can neither update, delete or truncate them nor disable the triggers
    (which only the owner can)."""
    role = f"prisma_glow_app_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")  # rolled back with the test's transaction
    call_command("grant_app_role", role, stdout=None)
    first = audit_record(organization=org, action="agent.create", actor=owner)
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
        try:
            event = audit_record(organization=org, action="agent.update", actor=owner)  # as the app
            assert event.prev_hash == first.hash
            cursor.execute("UPDATE tenancy_organization SET name = name WHERE id = %s", [org.pk])
            for sql in (
                "UPDATE audit_auditevent SET action = 'x'",
                "DELETE FROM audit_auditevent",
                "TRUNCATE audit_auditevent",
                "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
                "DROP TRIGGER audit_auditevent_no_update ON audit_auditevent",
            ):
                with (
                    pytest.raises(DatabaseError, match="permission denied|must be owner"),
                    transaction.atomic(),
                ):
                    cursor.execute(sql)
        finally:
            cursor.execute("RESET ROLE")
    assert audit_verify_chain(org) == []


@postgresql_only
def test_grant_app_role_refuses_an_unknown_role_or_one_that_owns_the_tables(db):
    with pytest.raises(CommandError, match="No database role 'nobody_here'"):
        call_command("grant_app_role", "nobody_here")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (me,) = cursor.fetchone()
    with pytest.raises(CommandError, match="superuser or owns tables"):
        call_command("grant_app_role", me)


def test_compose_runs_the_application_as_a_role_that_owns_no_table():
    """ASVS 5.0 V16.4.2: in docker-compose.yml the owner migrates and grants; web and worker connect as
    the application's role, which the database's first start creates."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    for name in ("web", "worker"):
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://prisma_glow_app:")
    migrate = services["migrate"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgres://prisma_glow:")
    assert (
        "manage.py migrate --noinput && python manage.py grant_app_role prisma_glow_app"
        in migrate["command"][-1]
    )
    assert "./deploy/postgres-init:/docker-entrypoint-initdb.d:ro" in services["db"]["volumes"]
    script = (root / "deploy" / "postgres-init" / "10-app-role.sh").read_text()
    assert "CREATE ROLE prisma_glow_app LOGIN" in script


# --- Invitation links never reach a log (review of issue 16) ------------------------------------------
def _logged(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def test_v16_2_5_a_live_invitation_link_opened_by_another_user_is_not_logged(org, editor, caplog):
    """ASVS 5.0 V16.2.5: a live invitation's token (a bearer secret) is not written to the logs when
    another signed-in user opens the link: the page answers 200, and nothing logs the path."""
    invitation = InvitationFactory(organization=org, email="mira@firm.example")
    client = login(editor)
    with caplog.at_level(logging.INFO):
        assert client.get(f"/invitation/{invitation.token}/").status_code == 200
        assert client.post(f"/invitation/{invitation.token}/").status_code == 200
    assert invitation.token not in _logged(caplog)


@pytest.mark.parametrize("state", ["unknown", "revoked"])
def test_v16_2_5_django_request_logs_invitation_paths_redacted(org, caplog, state):
    """ASVS 5.0 V16.2.5: a 404 or 410 on an invitation link makes django.request log the path: the
    token is replaced with [redacted]."""
    token = "unknown-token-0123456789abcdefghij"
    if state == "revoked":
        invitation = InvitationFactory(organization=org, revoked_at=timezone.now())
        token = invitation.token
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get(f"/invitation/{token}/")
    assert response.status_code in (404, 410)
    text = _logged(caplog)
    assert "/invitation/[redacted]/" in text and token not in text


def test_v16_2_5_runserver_request_lines_are_redacted_even_in_a_next_parameter(caplog):
    """ASVS 5.0 V16.2.5: django.server (runserver's request lines) is filtered too, for the plain and
    the percent-encoded path (``/admin/login/?next=%2Finvitation%2F<token>%2F``)."""
    token = "Zx9_-secretTOKENvalue0123456789abcdef"
    server = logging.getLogger("django.server")
    with caplog.at_level(logging.INFO, logger="django.server"):
        server.addHandler(caplog.handler)
        try:
            server.info('"%s" %s %s', f"GET /invitation/{token}/ HTTP/1.1", "200", "512")
            server.info(
                '"%s" %s %s', f"GET /admin/login/?next=%2Finvitation%2F{token}%2F HTTP/1.1", "200", "1"
            )
        finally:
            server.removeHandler(caplog.handler)
    text = _logged(caplog)
    assert token not in text
    assert "/invitation/[redacted]/" in text and "%2Finvitation%2F[redacted]%2F" in text
