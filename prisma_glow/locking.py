"""Row locks in one order, and retries for the conflicts that remain.

**One order.** Every write that changes an organisation's configuration or its audit log takes the
organisation's row first, then the agent's, then the rows it changes: ``lock_for_write`` at the start
of the service's transaction. The organisation's row is where these writes meet anyway: the
configuration stamp is replaced in the same transaction (``config_stamp.bump``, an UPDATE of the row)
and ``audit_record`` locks it (``lock_for_write``) to append to the chain. Taken at the end, after the
agent's row and the changed rows, those locks made two writes to one agent wait on each other — one
holding the agent and waiting for the organisation, the other holding the organisation and waiting,
at its commit, for the agent (foreign-key checks are deferred to the commit) — and PostgreSQL broke
the cycle with ``DeadlockDetected`` (issue 13, finding 5). Taken first, writes to one organisation
queue at its row, which the audit chain already made them do at the end.

The strength is the strongest the transaction will need, so that no lock is upgraded later (two
transactions holding the weaker lock and both waiting to upgrade it deadlock):

- the organisation ``FOR NO KEY UPDATE``: what the stamp's UPDATE (it changes no key column) and the
  audit head take. Rows inserted for the organisation (a run's execution, an audit event) only need
  ``FOR KEY SHARE`` on it and do not wait;
- the agent ``FOR NO KEY UPDATE``, or ``FOR UPDATE`` (``agent_key_change``) when the transaction
  deletes the agent or may change its name or slug (columns of unique constraints).

SQLite has no row locks: its write transactions begin ``IMMEDIATE`` (see DATABASES in settings), so
writers are serialised whole and nothing is locked here.

**Retries.** A deadlock or serialisation failure that happens anyway (a write path that does not lock
first, raw SQL, a future change) aborts the whole transaction; ``retry_on_conflict`` runs the service
again, a bounded number of times with a short jittered back-off. That is possible only where the
service owns the outermost transaction: called inside a caller's transaction (a service calling
another, the admin's own ``transaction.atomic`` around ``save_model``), it runs once and the error
goes to the owner of that transaction. When the attempts are spent, ``BusyError``: the API answers
503 ``busy`` with ``Retry-After`` (``prisma_glow.api.errors``), the admin shows the message
(``prisma_glow.middleware.BusyMiddleware`` for errors that reach the view's owner).
"""

from __future__ import annotations

import functools
import logging
import random
import time

from django.conf import settings
from django.db import DatabaseError, connection

from prisma_glow.exceptions import BUSY_MESSAGE, BusyError

logger = logging.getLogger("prisma_glow.locking")

#: PostgreSQL's deadlock_detected and serialization_failure: the transaction was aborted to let
#: another one finish; running it again may succeed.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
#: lock_not_available (a lock_timeout or NOWAIT): the row is busy, but the wait is already over.
BUSY_SQLSTATES = RETRYABLE_SQLSTATES | {"55P03"}
#: The first back-off, in seconds; each further one doubles. The sleep is uniform in [0, back-off].
BACKOFF_SECONDS = 0.05


# --- Locks ---------------------------------------------------------------------------------------


def _pk(value):
    return getattr(value, "pk", value)


def lock_for_write(*, organization, agent=None, agent_key_change: bool = False) -> None:
    """Lock ``organization``'s row (an instance or an id), then ``agent``'s (an instance; one with only
    its ``pk`` set will do), until the transaction ends.

    Call first in every transaction that changes an organisation's configuration or appends to its
    audit log, before any other row is touched (see the module's docstring for the order and the
    strengths). ``agent_key_change``: the transaction deletes the agent or changes its name or slug.
    """
    if not connection.features.has_select_for_update:  # SQLite: writers are serialised at BEGIN
        return
    from prisma_glow.tenancy.models import Organization

    organization_id = _pk(organization)
    if organization_id is not None:
        list(Organization.objects.select_for_update(no_key=True).filter(pk=organization_id).values("pk"))
    if agent is not None and agent.pk is not None:
        rows = type(agent)._base_manager.select_for_update(no_key=not agent_key_change)
        list(rows.filter(pk=agent.pk).values("pk"))


# --- Conflicts and retries --------------------------------------------------------------------------


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_retryable_conflict(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: the transaction was rolled back and may be run again."""
    return isinstance(exc, DatabaseError) and _sqlstate(exc) in RETRYABLE_SQLSTATES


def is_busy(exc: BaseException) -> bool:
    """The database could not apply a valid write now: ``BusyError``, a conflict ``retry_on_conflict``
    would retry, a lock wait that timed out, or SQLite's "database is locked" (its busy timeout
    elapsed)."""
    if isinstance(exc, BusyError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    if _sqlstate(exc) in BUSY_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


def write_attempts() -> int:
    """How many times a write is tried (``PRISMA_GLOW_WRITE_ATTEMPTS``, at least once)."""
    return max(1, int(getattr(settings, "DB_WRITE_ATTEMPTS", 3)))


def retry_on_conflict(func=None, *, attempts: int | None = None):
    """Run ``func`` again when its transaction loses a deadlock or a serialisation failure.

    Put it above ``@transaction.atomic`` (or on a function whose transactions are inside it):
    ``@retry_on_conflict`` or ``@retry_on_conflict(attempts=3)`` (default: ``write_attempts()``).
    Called inside a transaction someone else owns, ``func`` runs once and the error propagates: only
    the owner of the outermost transaction can run it again. After the last attempt, ``BusyError``
    (a ``ConflictError``: the API answers 503, the admin shows the message).

    The function is run again from the start, with the same arguments: it must read what it changes
    inside its transaction (every service here re-reads or locks the rows it edits), not rely on
    instance state a failed attempt may have changed.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if connection.in_atomic_block:
                return function(*args, **kwargs)
            tries = attempts if attempts is not None else write_attempts()
            for attempt in range(1, tries + 1):
                try:
                    return function(*args, **kwargs)
                except DatabaseError as exc:
                    if not is_retryable_conflict(exc):
                        raise
                    if attempt >= tries:
                        logger.warning(
                            "%s: %s after %d attempt(s); giving up",
                            function.__qualname__,
                            _sqlstate(exc),
                            tries,
                        )
                        raise BusyError(BUSY_MESSAGE, code="busy") from exc
                    logger.info(
                        "%s: %s, attempt %d of %d", function.__qualname__, _sqlstate(exc), attempt, tries
                    )
                    time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))
            raise AssertionError("unreachable")  # pragma: no cover

        return wrapper

    return decorate(func) if func is not None else decorate
