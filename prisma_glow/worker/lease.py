"""The lease that django-tasks-db lacks: heartbeats, and the takeover of tasks whose worker stopped.

A worker claims a task by appending its id to ``DBTaskResult.worker_ids`` and setting it RUNNING; if
the process then dies (``kill -9``, out of memory, the machine going away) nothing ever finishes the
row. Here each worker keeps a ``WorkerHeartbeat`` fresh, and any live worker puts a RUNNING task whose
last worker has not beaten for ``WORKER_LEASE_SECONDS`` back to READY, or, once it has been claimed
``WORKER_MAX_ATTEMPTS`` times, marks it FAILED with the reason and sends ``task_finished`` as a
normal failure does. A task whose worker is alive is never taken over, however long it runs.

The number of attempts is ``len(worker_ids)``: every claim appends the claiming worker's id, so no
extra state is needed. Clocks: ``beat_at``, a heartbeat's ``started_at`` and the takeover's cutoff
come from the database's clock (``Now()``), so liveness never depends on the workers' clocks
agreeing. A task's ``started_at`` is django-tasks-db's claim time (the claiming worker's clock); it
only narrows the candidates (a task claimed within the lease is not looked at), and a worker beats
before it claims anything.

A worker id names one running process: a worker restarted under the same id (``--worker-id
"$HOSTNAME"`` in a container) takes back, at startup, the RUNNING tasks its previous life left
(:func:`own_tasks_take_back`), since its fresh beats would otherwise keep them alive for ever.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from traceback import format_exception
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from prisma_glow.worker.models import WorkerHeartbeat

logger = logging.getLogger("prisma_glow.worker")

# Heartbeat rows of workers gone this long are deleted (a stale row only serves diagnosis).
STALE_HEARTBEAT_RETENTION = timedelta(days=1)
# At most this many abandoned tasks are handled per pass (the next pass takes the rest).
TAKEOVER_BATCH = 100


class WorkerLostError(Exception):
    """The failure recorded on a task whose worker stopped while running it, too many times."""


@dataclass
class TakeoverReport:
    """What one takeover pass did: tasks put back in the queue, and tasks failed for good."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def heartbeat_start(*, worker_id: str, backend_name: str, queues: str, using: str = "default") -> None:
    """A worker's first beat: its row describes this process (pid, host, queues, start now), replacing
    whatever a previous process with the same id left. Times are the database's."""
    WorkerHeartbeat.objects.using(using).update_or_create(
        worker_id=worker_id,
        defaults={
            "beat_at": Now(),
            "pid": os.getpid(),
            "host": socket.gethostname()[:255],
            "backend_name": backend_name,
            "queues": queues[:255],
            "started_at": Now(),
        },
    )


def heartbeat_beat(*, worker_id: str, backend_name: str, queues: str, using: str = "default") -> None:
    """Record that ``worker_id`` is alive now, on the database's clock (writing its whole row again
    if it has gone, e.g. swept while the worker was cut off)."""
    if not WorkerHeartbeat.objects.using(using).filter(worker_id=worker_id).update(beat_at=Now()):
        heartbeat_start(worker_id=worker_id, backend_name=backend_name, queues=queues, using=using)


def heartbeat_remove(*, worker_id: str, using: str = "default") -> None:
    """A worker stopping cleanly says so: its row goes (its tasks have all finished)."""
    WorkerHeartbeat.objects.using(using).filter(worker_id=worker_id).delete()


def task_result_finish(
    db_task_result: DBTaskResult, *, error: BaseException | None = None, return_value: Any = None
) -> bool:
    """Record a task's outcome (SUCCESSFUL with ``return_value``, or FAILED with ``error``) only if
    it is still the run that ``db_task_result`` holds: RUNNING, claimed at the same ``started_at``.

    The ``started_at`` of the claim is the fencing token: a task taken over and claimed again has a
    new one, so a worker whose lease lapsed cannot overwrite the outcome of the run that replaced
    its own. One conditional UPDATE: on PostgreSQL it waits for a takeover holding the row and then
    re-checks the condition. The fields are those django-tasks-db's ``set_successful`` /
    ``set_failed`` write (whose retries inside a transaction would hide a lost connection).
    Returns whether the outcome was recorded; the in-memory row is updated to match.
    """
    fields: dict[str, Any] = {
        "status": TaskResultStatus.SUCCESSFUL if error is None else TaskResultStatus.FAILED,
        "finished_at": timezone.now(),
        "return_value": return_value if error is None else None,
        "exception_class_path": "",
        "traceback": "",
    }
    if error is not None:
        fields["exception_class_path"] = f"{type(error).__module__}.{type(error).__qualname__}"
        fields["traceback"] = "".join(format_exception(error))
    recorded = (
        DBTaskResult.objects.using(db_task_result._state.db or "default")
        .filter(pk=db_task_result.pk, status=TaskResultStatus.RUNNING, started_at=db_task_result.started_at)
        .update(**fields)
    )
    if recorded:
        for name, value in fields.items():
            setattr(db_task_result, name, value)
    return bool(recorded)


def task_result_requeue(db_task_result: DBTaskResult) -> bool:
    """Put a task this worker could not finish back to READY (fenced like :func:`task_result_finish`)."""
    requeued = (
        DBTaskResult.objects.using(db_task_result._state.db or "default")
        .filter(pk=db_task_result.pk, status=TaskResultStatus.RUNNING, started_at=db_task_result.started_at)
        .update(status=TaskResultStatus.READY)
    )
    if requeued:
        db_task_result.status = TaskResultStatus.READY
    return bool(requeued)


def lost_reason(*, attempts: int) -> str:
    """The failure message of a task given up on after its workers stopped ``attempts`` times."""
    lease = settings.WORKER_LEASE_SECONDS
    plural = "attempt" if attempts == 1 else "attempts"
    return f"the worker running it stopped (no heartbeat for {lease:g} s); gave up after {attempts} {plural}"


def abandoned_tasks_take_over(*, tasks: QuerySet[DBTaskResult] | None = None) -> TakeoverReport:
    """Take over the RUNNING tasks among ``tasks`` (default: all) whose worker has stopped beating.

    Each such task goes back to READY (another worker runs it again) unless it has already been
    claimed ``WORKER_MAX_ATTEMPTS`` times; then it is FAILED with :func:`lost_reason` and
    ``task_finished`` is sent after the commit, as for any failed task. The rows are locked with
    ``SELECT … FOR UPDATE SKIP LOCKED`` (an exclusive transaction on SQLite), so two workers never
    both take the same task, and a worker recording its own task's outcome (which locks the row)
    is never raced. "Stopped" is judged on the database's clock: no beat since ``Now() - lease``.
    The caller decides whether it may take over at all (the runner waits until it has itself been
    beating for a lease).
    """
    tasks = DBTaskResult.objects.all() if tasks is None else tasks
    cutoff = Now() - timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    report = TakeoverReport()
    failed: list[DBTaskResult] = []
    with exclusive_transaction(tasks.db):
        # A task claimed less than a lease ago is not even looked at: its worker beat when it claimed it.
        candidates = list(
            tasks.running()
            .filter(started_at__lte=cutoff)
            .select_for_update(skip_locked=True)[:TAKEOVER_BATCH]
        )
        if not candidates:
            return report
        runners = {task.pk: (task.worker_ids[-1] if task.worker_ids else "") for task in candidates}
        alive = set(
            WorkerHeartbeat.objects.using(tasks.db)
            .filter(worker_id__in=set(runners.values()), beat_at__gte=cutoff)
            .values_list("worker_id", flat=True)
        )
        for task in candidates:
            if runners[task.pk] not in alive:
                _abandoned_task_settle(task, runner=runners[task.pk], report=report, failed=failed)
    for task in failed:
        send_task_failed(task)
    return report


def own_tasks_take_back(*, worker_id: str, tasks: QuerySet[DBTaskResult] | None = None) -> TakeoverReport:
    """At a worker's start, the RUNNING tasks among ``tasks`` last claimed under its own id belong to
    a previous process with that id (killed, then restarted with the same ``--worker-id``): they are
    abandoned, and settled exactly as :func:`abandoned_tasks_take_over` would (back to READY, or
    FAILED with the same reason and ``task_finished`` once the attempts are spent), without waiting
    for a lease: the new process's beats would otherwise keep them RUNNING for ever.
    """
    tasks = DBTaskResult.objects.all() if tasks is None else tasks
    report = TakeoverReport()
    failed: list[DBTaskResult] = []
    # The last claimant is the JSON list's last element, which neither database indexes: the few
    # RUNNING rows are read and matched here, then locked.
    mine = [pk for pk, ids in tasks.running().values_list("pk", "worker_ids") if ids and ids[-1] == worker_id]
    if not mine:
        return report
    with exclusive_transaction(tasks.db):
        for task in tasks.running().filter(pk__in=mine).select_for_update(skip_locked=True):
            if task.worker_ids and task.worker_ids[-1] == worker_id:
                _abandoned_task_settle(task, runner=worker_id, report=report, failed=failed, restarted=True)
    for task in failed:
        send_task_failed(task)
    return report


def _abandoned_task_settle(
    task: DBTaskResult,
    *,
    runner: str,
    report: TakeoverReport,
    failed: list[DBTaskResult],
    restarted: bool = False,
) -> None:
    """Requeue a locked task whose worker stopped, or fail it when its attempts are spent."""
    lease = settings.WORKER_LEASE_SECONDS
    max_attempts = settings.WORKER_MAX_ATTEMPTS
    how = "was restarted" if restarted else f"stopped (no heartbeat for {lease:g} s)"
    attempts = len(task.worker_ids)
    if attempts >= max_attempts:
        task_result_finish(task, error=WorkerLostError(lost_reason(attempts=attempts)))
        failed.append(task)
        report.failed.append(str(task.pk))
        logger.error(
            "Task id=%s path=%s: worker %s %s; failed after %d attempts",
            task.pk,
            task.task_path,
            runner,
            how,
            attempts,
        )
    else:
        task_result_requeue(task)
        report.requeued.append(str(task.pk))
        logger.warning(
            "Task id=%s path=%s: worker %s %s; back in the queue after attempt %d of %d",
            task.pk,
            task.task_path,
            runner,
            how,
            attempts,
            max_attempts,
        )


def stale_heartbeats_remove(*, using: str = "default") -> int:
    """Delete the rows of workers that stopped beating a day ago or more."""
    deleted, _ = (
        WorkerHeartbeat.objects.using(using).filter(beat_at__lt=Now() - STALE_HEARTBEAT_RETENTION).delete()
    )
    return deleted


def send_task_finished(db_task_result: DBTaskResult, *, sender: Any) -> None:
    """Send ``task_finished``; a receiver that raises is logged, not allowed to stop the worker."""
    for receiver, response in task_finished.send_robust(
        sender=sender, task_result=db_task_result.task_result
    ):
        if isinstance(response, Exception):
            logger.error(
                "task_finished receiver %r failed for task id=%s",
                receiver,
                db_task_result.pk,
                exc_info=response,
            )


def send_task_failed(db_task_result: DBTaskResult) -> None:
    """Send ``task_finished`` for a failed task the way django-tasks-db's worker does for a task that
    raised: the backend's class as sender, the task result (FAILED, with its error) as
    ``task_result``. A receiver that raises is logged, not allowed to stop the worker."""
    try:
        sender = type(db_task_result.task.get_backend())
        db_task_result.task_result  # noqa: B018 -- the task must import for its result to be built
    except (ImportError, SuspiciousOperation):
        logger.exception("Task id=%s failed unexpectedly", db_task_result.pk)
        return
    send_task_finished(db_task_result, sender=sender)
