"""The task worker ``manage.py db_worker`` runs: django-tasks-db's worker with a lease, and survival of
database outages.

django-tasks-db's ``Worker`` claims a task, runs it and records its outcome; it has no lease (a
killed worker's task stays RUNNING for ever) and exits on the first ``OperationalError`` (a database
restart stops background work until someone notices). :class:`LeasedWorker` adds:

- a **heartbeat** thread (:class:`LeaseKeeper`) that refreshes this worker's ``WorkerHeartbeat``
  every ``WORKER_HEARTBEAT_SECONDS`` and takes over the tasks of workers that stopped beating
  (``prisma_glow.worker.lease``), even while this worker is busy with a long task, but only once
  it has itself been beating without a break for a lease: after an outage, the first worker back
  would otherwise find every other worker's beat stale and take over tasks they are still running;
- a **fresh start**: the first beat rewrites the row (pid, host, start), and the RUNNING tasks left
  under this worker's id by a previous process with the same id are put back (or failed) at once;
- **fenced outcomes**: a task's result is recorded only if the task is still this worker's claim,
  so a worker whose lease lapsed (cut off from the database longer than the lease) cannot overwrite
  the run that replaced it;
- **reconnection**: on ``OperationalError`` / ``InterfaceError`` it closes its connections, waits
  (0.5 s, doubling up to ``WORKER_RECONNECT_MAX_SECONDS``), reconnects and carries on, logging each
  step. An outcome it could not record is recorded after the reconnection (the task is not run
  again); a task that itself failed on a lost connection is put back in the queue, within
  ``WORKER_MAX_ATTEMPTS`` claims, like a task whose worker died.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.tasks import TaskContext
from django.tasks.signals import task_started
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from prisma_glow.worker.lease import (
    abandoned_tasks_take_over,
    heartbeat_beat,
    heartbeat_remove,
    heartbeat_start,
    own_tasks_take_back,
    send_task_failed,
    send_task_finished,
    stale_heartbeats_remove,
    task_result_finish,
    task_result_requeue,
)

logger = logging.getLogger("prisma_glow.worker")

# Errors that mean "the database connection is gone or unusable", after which Django's connection
# must be closed and opened again.
DATABASE_ERRORS = (OperationalError, InterfaceError)
RECONNECT_FIRST_DELAY = 0.5
# Stale heartbeat rows are swept about once an hour (by whichever worker gets there).
STALE_SWEEP_SECONDS = 3600.0


def close_connections() -> None:
    """Drop this thread's database connections, broken or not (the next query opens a new one)."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # a connection the server already dropped may fail to close; it is gone anyway
            connection.connection = None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class Outcome:
    """How a task's run ended, kept until it is recorded (across a reconnection if need be)."""

    db_task_result: DBTaskResult
    error: BaseException | None = None
    return_value: Any = None
    sender: Any = None
    # The task failed on a lost database connection: run it again (bounded) rather than fail it.
    lost: bool = False


class LeaseKeeper:
    """A thread that beats for its worker and takes over the tasks of workers that stopped.

    It takes over only after beating without a break for ``WORKER_LEASE_SECONDS``: every beat
    succeeded, none more than a lease after the one before (durations on this process's monotonic
    ``clock``). A worker back from an outage, or from a pause, thereby gives the other workers a
    lease to beat again before it judges them; the ones still silent then really stopped.
    """

    def __init__(self, worker: LeasedWorker, *, clock=time.monotonic) -> None:
        self.worker = worker
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._database_down = False
        self._last_sweep = 0.0
        # The monotonic times of the first beat of the current unbroken run of beats, and of the last.
        self.beating_since: float | None = None
        self._last_beat: float | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"lease-{self.worker.worker_id[:12]}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, 2 * settings.WORKER_HEARTBEAT_SECONDS))

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            close_connections()

    def beat(self) -> None:
        """One pass: the heartbeat, then the takeover of abandoned tasks. Database errors are logged
        once per outage and the pass is tried again at the next beat."""
        try:
            self.worker.beat()
            self._beaten()
            if self.may_take_over():
                abandoned_tasks_take_over(tasks=self.worker.task_queryset())
            if time.monotonic() - self._last_sweep > STALE_SWEEP_SECONDS:
                stale_heartbeats_remove()
                self._last_sweep = time.monotonic()
        except DATABASE_ERRORS as exc:
            if not self._database_down:
                logger.warning(
                    "Worker %s: heartbeat failed, the database is unavailable (%s); retrying every %g s",
                    self.worker.worker_id,
                    first_line(exc),
                    settings.WORKER_HEARTBEAT_SECONDS,
                )
            self._database_down = True
            self.beating_since = self._last_beat = None
            close_connections()
            return
        except Exception:
            logger.exception("Worker %s: heartbeat pass failed", self.worker.worker_id)
            return
        if self._database_down:
            logger.info(
                "Worker %s: heartbeat resumed; taking over other workers' tasks again in %g s",
                self.worker.worker_id,
                settings.WORKER_LEASE_SECONDS,
            )
            self._database_down = False

    def _beaten(self) -> None:
        """Note a successful beat; one more than a lease after the previous starts a new run."""
        now = self.clock()
        if self._last_beat is None or now - self._last_beat > settings.WORKER_LEASE_SECONDS:
            self.beating_since = now
        self._last_beat = now

    def may_take_over(self) -> bool:
        """Whether this worker has been beating without a break for at least a lease."""
        return (
            self.beating_since is not None
            and self.clock() - self.beating_since >= settings.WORKER_LEASE_SECONDS
        )


class LeasedWorker(Worker):
    """django-tasks-db's worker with a lease, fenced outcomes and reconnection (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keeper = LeaseKeeper(self)
        # Set once the first beat and the take-back of a previous life's tasks are done.
        self.started = False
        # The outcome of the last task, until it is recorded.
        self.pending: Outcome | None = None

    # --- the lease -----------------------------------------------------------------------------
    def task_queryset(self):
        """The tasks this worker serves (its backend and queues), as django-tasks-db selects them."""
        tasks = DBTaskResult.objects.filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        return tasks

    def beat(self) -> None:
        heartbeat_beat(
            worker_id=self.worker_id, backend_name=self.backend_name, queues=",".join(self.queue_names)
        )

    def start(self) -> None:
        """The first beat (this process's row, replacing a previous one's), then the tasks a previous
        process with this id left RUNNING go back to the queue (or fail, attempts spent)."""
        heartbeat_start(
            worker_id=self.worker_id, backend_name=self.backend_name, queues=",".join(self.queue_names)
        )
        report = own_tasks_take_back(worker_id=self.worker_id, tasks=self.task_queryset())
        if report.requeued or report.failed:
            logger.warning(
                "Worker %s: a previous process with this id left %d task(s) running; %d back in the "
                "queue, %d failed",
                self.worker_id,
                len(report.requeued) + len(report.failed),
                len(report.requeued),
                len(report.failed),
            )
        self.started = True

    # --- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        """Run django-tasks-db's loop; on a lost database connection, reconnect and run it again."""
        delay = 0.0
        try:
            while True:
                try:
                    # The first beat is written before any task is claimed, so a claimed task's
                    # worker always has a heartbeat row.
                    if self.started:
                        self.beat()
                    else:
                        self.start()
                    if self.pending is not None:
                        self.settle()
                    if delay:
                        logger.info("Worker %s: reconnected to the database; carrying on", self.worker_id)
                        delay = 0.0
                    self.keeper.start()
                    super().run()
                    return
                except DATABASE_ERRORS as exc:
                    if not self.running:
                        return
                    delay = min(max(2 * delay, RECONNECT_FIRST_DELAY), settings.WORKER_RECONNECT_MAX_SECONDS)
                    logger.warning(
                        "Worker %s: the database is unavailable (%s); reconnecting in %.1f s",
                        self.worker_id,
                        first_line(exc),
                        delay,
                    )
                    close_connections()
                    self.startup_delay = False
                    self._sleep(delay)
                    if not self.running:
                        return
        finally:
            self.keeper.stop()
            try:
                heartbeat_remove(worker_id=self.worker_id)
            except DATABASE_ERRORS as exc:
                logger.warning(
                    "Worker %s: could not remove its heartbeat (%s); it goes stale instead",
                    self.worker_id,
                    first_line(exc),
                )
            close_connections()

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when the worker is asked to stop (``running`` cleared)."""
        deadline = time.monotonic() + seconds
        while self.running and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))

    # --- one task --------------------------------------------------------------------------------
    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Run the claimed task and record its outcome, as django-tasks-db's ``run_task`` does (same
        signals, same fields), but fenced and able to wait for the database."""
        try:
            self.running_task = True
            self.pending = self.call(db_task_result)
            self.settle()
        finally:
            self.running_task = False
            self._run_tasks += 1

    def call(self, db_task_result: DBTaskResult) -> Outcome:
        try:
            task = db_task_result.task
            task_result = db_task_result.task_result
            backend = task.get_backend()
            task_started.send(sender=backend, task_result=task_result)
            if task.takes_context:
                value = task.call(
                    TaskContext(task_result=task_result), *task_result.args, **task_result.kwargs
                )
            else:
                value = task.call(*task_result.args, **task_result.kwargs)
        except DATABASE_ERRORS as exc:
            return Outcome(db_task_result, error=exc, lost=True)
        except BaseException as exc:  # as django-tasks-db: whatever the task raised is its failure
            return Outcome(db_task_result, error=exc)
        return Outcome(db_task_result, return_value=value, sender=backend)

    def settle(self) -> None:
        """Record ``self.pending``. A database error leaves it pending for after the reconnection."""
        outcome = self.pending
        assert outcome is not None
        db_task_result = outcome.db_task_result
        if outcome.lost:
            attempts = len(db_task_result.worker_ids)
            if attempts < settings.WORKER_MAX_ATTEMPTS:
                if task_result_requeue(db_task_result):
                    logger.warning(
                        "Task id=%s: its database connection was lost (%s); back in the queue after "
                        "attempt %d of %d",
                        db_task_result.pk,
                        first_line(outcome.error),
                        attempts,
                        settings.WORKER_MAX_ATTEMPTS,
                    )
                else:
                    self._log_taken_over(db_task_result)
                self.pending = None
                return
        if outcome.error is None:
            try:
                recorded = task_result_finish(db_task_result, return_value=outcome.return_value)
            except DATABASE_ERRORS:
                raise
            except Exception as exc:  # e.g. a return value JSON cannot hold: the task's failure
                outcome = self.pending = Outcome(db_task_result, error=exc)
            else:
                self.pending = None
                if recorded:
                    send_task_finished(db_task_result, sender=outcome.sender)
                else:
                    self._log_taken_over(db_task_result)
                return
        assert outcome.error is not None
        recorded = task_result_finish(db_task_result, error=outcome.error)
        self.pending = None
        if recorded:
            # django-tasks-db sends the signal inside its ``except``: Django's log_task_finished then
            # logs the task's traceback from sys.exc_info(). Raised again here for the same log.
            try:
                raise outcome.error
            except BaseException:
                send_task_failed(db_task_result)
        else:
            self._log_taken_over(db_task_result)

    def _log_taken_over(self, db_task_result: DBTaskResult) -> None:
        logger.warning(
            "Task id=%s was taken over while this worker (%s) ran it (its heartbeat had lapsed); "
            "this run's outcome is discarded",
            db_task_result.pk,
            self.worker_id,
        )
