"""Lock order and retries (``prisma_glow.locking``), with real deadlocks between two connections.

Each deadlock is made the way it happens in production: the code under test holds one row and waits
for a second, held by another connection (a thread with its own connection), which then asks for the
first. Only the code under test's backend checks for the deadlock within the test (the other
connection's ``deadlock_timeout`` is a minute), so it is the transaction aborted, the other one
commits — whichever of the two backends a loaded machine happens to run first.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client

from agents.models import Agent
from personas.models import Persona
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record, audit_verify_chain
from prisma_glow.exceptions import BusyError
from prisma_glow.locking import is_busy, is_retryable_conflict, lock_for_write, retry_on_conflict
from prisma_glow.tenancy.models import Organization
from tests.conftest import client_for
from tests.factories import AgentFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

LOCK_ORG = "SELECT 1 FROM tenancy_organization WHERE id = %s FOR NO KEY UPDATE"
LOCK_AGENT = "SELECT 1 FROM agents_agent WHERE id = %s FOR UPDATE"


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's; SQLite serialises write transactions")


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class Partner(threading.Thread):
    """Another connection that takes ``first`` at once and, once ``victim`` waits for a lock, ``second``:
    if the victim holds ``second`` and waits for ``first``, the two are deadlocked. It commits when it
    gets both; ``outcome`` says what happened to it."""

    def __init__(self, victim: int, first: tuple[str, list], second: tuple[str, list]):
        super().__init__(daemon=True)
        self.victim, self.first, self.second = victim, first, second
        self.holding = threading.Event()
        self.outcome = ""

    def run(self) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # PostgreSQL aborts the transaction whose backend checks first, a deadlock_timeout
                # after its wait began. A timer race between two backends (the victim's check 0.3 s
                # ahead) can go either way on a loaded machine: this side does not check in time.
                cursor.execute("SET LOCAL deadlock_timeout = '60s'")
                cursor.execute(*self.first)
                self.holding.set()
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    cursor.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.victim]
                    )
                    if cursor.fetchone()[0] == "Lock":
                        break
                    time.sleep(0.01)
                else:
                    raise AssertionError("the code under test never waited for the lock")
                cursor.execute(*self.second)
            self.outcome = "committed"
        except Exception as exc:
            self.outcome = repr(exc)
        finally:
            connection.close()

    def __enter__(self):
        self.start()
        assert self.holding.wait(10)
        return self

    def __exit__(self, *exc):
        self.join(20)
        assert not self.is_alive()


# --- The decorator ---------------------------------------------------------------------------------


def _locking_service(calls: list, first: int, second: int, *, attempts: int):
    @retry_on_conflict(attempts=attempts)
    @transaction.atomic
    def service():
        calls.append(len(calls) + 1)
        with connection.cursor() as cursor:
            cursor.execute(LOCK_ORG, [first])
            cursor.execute(LOCK_ORG, [second])
            cursor.execute(
                "UPDATE tenancy_organization SET name = %s WHERE id = %s", [f"Run {len(calls)}", first]
            )
        return "done"

    return service


def test_a_deadlocked_transaction_is_run_again_and_commits():
    """The transaction PostgreSQL aborts to break a deadlock is run again (after the other commits)."""
    a, b = OrganizationFactory(), OrganizationFactory()
    calls: list[int] = []
    service = _locking_service(calls, a.pk, b.pk, attempts=3)
    with Partner(_backend_pid(), (LOCK_ORG, [b.pk]), (LOCK_ORG, [a.pk])) as partner:
        assert service() == "done"
    assert partner.outcome == "committed"
    assert calls == [1, 2]
    assert Organization.objects.get(pk=a.pk).name == "Run 2"


def test_a_deadlock_past_the_last_attempt_is_a_busy_error():
    """When the attempts are spent, ``BusyError`` (a ConflictError) from the deadlock; nothing stays."""
    a, b = OrganizationFactory(name="Before"), OrganizationFactory()
    calls: list[int] = []
    service = _locking_service(calls, a.pk, b.pk, attempts=1)
    with Partner(_backend_pid(), (LOCK_ORG, [b.pk]), (LOCK_ORG, [a.pk])) as partner:
        with pytest.raises(BusyError) as raised:
            service()
    assert partner.outcome == "committed"
    assert calls == [1]
    assert is_retryable_conflict(raised.value.__cause__) and is_busy(raised.value)
    assert raised.value.code == "busy"
    assert Organization.objects.get(pk=a.pk).name == "Before"


def test_inside_a_callers_transaction_the_deadlock_goes_to_the_caller():
    """Only the owner of the outermost transaction can run it again: inside one, a single attempt and
    the database's error, for the owner to handle."""
    a, b = OrganizationFactory(), OrganizationFactory()
    calls: list[int] = []
    service = _locking_service(calls, a.pk, b.pk, attempts=3)
    with Partner(_backend_pid(), (LOCK_ORG, [b.pk]), (LOCK_ORG, [a.pk])) as partner:
        with pytest.raises(OperationalError) as raised, transaction.atomic():
            service()
    assert partner.outcome == "committed"
    assert calls == [1]
    assert is_retryable_conflict(raised.value)


def test_other_database_errors_are_not_retried():
    """A failure that is not a lost race (here a missing table) propagates at the first attempt."""
    calls: list[int] = []

    @retry_on_conflict(attempts=3)
    @transaction.atomic
    def broken():
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    with pytest.raises(Exception) as raised:
        broken()
    assert calls == [1] and not is_busy(raised.value)


# --- Lock strength -------------------------------------------------------------------------------


def _other_connection_can(sql: str, params: list) -> bool:
    """Whether another connection gets the lock of ``sql`` at once (NOWAIT)."""
    result = {}

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql + " NOWAIT", params)
            result["ok"] = True
        except OperationalError as exc:
            result["ok"] = False
            result["busy"] = is_busy(exc)  # lock_not_available: a busy row, not a server error
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    assert result.get("busy", True)
    return result["ok"]


def test_the_organisation_lock_is_as_strong_as_the_stamp_and_audit_locks_and_no_stronger():
    """``lock_for_write`` takes the organisation ``FOR NO KEY UPDATE``: the stamp's UPDATE and the audit
    head take nothing stronger afterwards (rows inserted for the organisation, which take ``FOR KEY
    SHARE``, still do not wait), and another writer cannot take it meanwhile."""
    from prisma_glow import config_stamp

    agent = AgentFactory()
    org_id = agent.organization_id
    key_share = "SELECT 1 FROM tenancy_organization WHERE id = %s FOR KEY SHARE"
    with transaction.atomic():
        lock_for_write(organization=org_id, agent=agent)
        assert _other_connection_can(key_share, [org_id])
        assert not _other_connection_can(LOCK_ORG, [org_id])
        config_stamp.bump([org_id])
        # The audit path (lock_for_write again, then the chain head, then the event's INSERT):
        audit_record(organization=agent.organization, action="agent.update", obj=agent)
        assert _other_connection_can(key_share, [org_id])  # no upgrade to FOR UPDATE happened
        # The agent: other writers wait, a run's row (FOR KEY SHARE on its agent) does not.
        assert not _other_connection_can(LOCK_AGENT.replace("FOR UPDATE", "FOR NO KEY UPDATE"), [agent.pk])
        assert _other_connection_can("SELECT 1 FROM agents_agent WHERE id = %s FOR KEY SHARE", [agent.pk])


# --- Through the doors -------------------------------------------------------------------------------


def _persona_deadlock(agent) -> Partner:
    """A partner that holds the agent, then asks for the organisation: a persona write (organisation,
    then agent) waiting for it is deadlocked."""
    return Partner(_backend_pid(), (LOCK_AGENT, [agent.pk]), (LOCK_ORG, [agent.organization_id]))


def test_the_api_retries_a_deadlocked_write(editor, org, caplog):
    """A persona creation aborted by a deadlock is run again inside the service: the caller gets 201."""
    agent = AgentFactory(organization=org)
    client = client_for(editor)
    with caplog.at_level("INFO", logger="prisma_glow.locking"), _persona_deadlock(agent) as partner:
        response = client.post(
            f"/api/v1/agents/{agent.pk}/personas/",
            {"name": "Adviser", "system_prompt": "Answer."},
            format="json",
        )
    assert partner.outcome == "committed"
    assert response.status_code == 201, response.json()
    assert "persona_create: 40P01, attempt 1 of 3" in caplog.text
    assert Persona.objects.filter(agent=agent).count() == 1
    assert audit_verify_chain(org) == []


def test_the_api_answers_503_busy_when_the_attempts_are_spent(editor, org, settings):
    """With one attempt (``PRISMA_GLOW_WRITE_ATTEMPTS=1``), the deadlock is a documented JSON 503."""
    settings.DB_WRITE_ATTEMPTS = 1
    agent = AgentFactory(organization=org)
    events = AuditEvent.objects.filter(organization=org).count()
    client = client_for(editor)
    with _persona_deadlock(agent) as partner:
        response = client.post(
            f"/api/v1/agents/{agent.pk}/personas/",
            {"name": "Adviser", "system_prompt": "Answer."},
            format="json",
        )
    assert partner.outcome == "committed"
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["code"] == "busy" and body["errors"] == {} and body["status"] == 503
    assert "Try again" in body["message"]
    assert not Persona.objects.filter(agent=agent).exists()
    assert AuditEvent.objects.filter(organization=org).count() == events


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_the_admin_shows_a_message_for_a_deadlock_in_its_own_transaction(editor, org, htmx):
    """The admin's delete page runs the service inside the admin's transaction (no retry possible):
    the deadlock sends the user back to the page with a message, not a 500 — a form post by a 303 to
    the page, an HTMX request by a 503 asking HTMX to reload it."""
    agent = AgentFactory(organization=org)
    client = Client()
    client.force_login(editor)
    url = f"/admin/agents/agent/{agent.pk}/delete/"
    headers = {"HX-Request": "true"} if htmx else {}
    with _persona_deadlock(agent) as partner:
        response = client.post(url, {"post": "yes"}, headers=headers)
    assert partner.outcome == "committed"
    if htmx:
        assert response.status_code == 503 and response["HX-Refresh"] == "true"
    else:
        assert response.status_code == 303 and response["Location"] == url
    page = client.get(url)
    assert page.status_code == 200
    assert "could not be applied; nothing was changed. Try again" in page.content.decode()
    assert Agent.objects.filter(pk=agent.pk).exists()
