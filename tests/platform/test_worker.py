"""The worker's lease on the database: takeover of abandoned tasks, fencing, health and commands.

These run in the test process on both databases; tests/platform/test_worker_processes.py runs real
``db_worker`` processes on PostgreSQL.
"""

from __future__ import annotations

import configparser
import json
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from prisma_glow.worker import health
from prisma_glow.worker.apps import check_lease_settings
from prisma_glow.worker.lease import (
    abandoned_tasks_take_over,
    heartbeat_beat,
    heartbeat_start,
    own_tasks_take_back,
    task_result_finish,
)
from prisma_glow.worker.models import WorkerHeartbeat
from prisma_glow.worker.runner import LeasedWorker, LeaseKeeper
from tests.platform.worker_tasks import add, fail, lose_connection, wait_for_release

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.WORKER_HEARTBEAT_SECONDS = 5
    settings.WORKER_LEASE_SECONDS = 60
    settings.WORKER_MAX_ATTEMPTS = 3


def running_task(*, worker_ids: list[str], started_ago: float) -> DBTaskResult:
    """A task claimed by the last of ``worker_ids`` ``started_ago`` seconds ago."""
    result = wait_for_release.enqueue("/nonexistent", "never")
    DBTaskResult.objects.filter(pk=result.id).update(
        status=TaskResultStatus.RUNNING,
        worker_ids=worker_ids,
        started_at=timezone.now() - timedelta(seconds=started_ago),
    )
    return DBTaskResult.objects.get(pk=result.id)


def beat(worker_id: str, *, ago: float = 0.0) -> None:
    heartbeat_beat(worker_id=worker_id, backend_name="default", queues="*")
    WorkerHeartbeat.objects.filter(pk=worker_id).update(beat_at=timezone.now() - timedelta(seconds=ago))


@pytest.fixture
def finished_signals():
    received = []

    def receiver(sender, task_result, **kwargs):
        received.append((sender, task_result))

    task_finished.connect(receiver)
    yield received
    task_finished.disconnect(receiver)


# --- takeover --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_task_whose_worker_stopped_beating_goes_back_to_the_queue(finished_signals):
    """The runner's last beat is older than the lease: the task is READY again, no signal sent."""
    beat("dead", ago=61)
    task = running_task(worker_ids=["dead"], started_ago=300)

    report = abandoned_tasks_take_over()

    task.refresh_from_db()
    assert task.status == TaskResultStatus.READY
    assert report.requeued == [str(task.pk)] and report.failed == []
    assert DBTaskResult.objects.ready().filter(pk=task.pk).exists()
    assert finished_signals == []


@pytest.mark.django_db
def test_a_task_whose_worker_left_no_heartbeat_at_all_is_taken_over():
    """A worker that never beat (or whose stale row was swept) counts as stopped."""
    task = running_task(worker_ids=["never-beat"], started_ago=120)
    abandoned_tasks_take_over()
    task.refresh_from_db()
    assert task.status == TaskResultStatus.READY


@pytest.mark.django_db
def test_a_live_workers_task_is_never_taken_over_however_long_it_runs():
    """Started a day ago, but its worker beat a second ago: it stays RUNNING."""
    beat("alive", ago=1)
    task = running_task(worker_ids=["dead-before", "alive"], started_ago=86400)

    report = abandoned_tasks_take_over()

    task.refresh_from_db()
    assert task.status == TaskResultStatus.RUNNING
    assert report.requeued == report.failed == []


@pytest.mark.django_db
def test_only_the_last_claimant_counts():
    """A live worker that ran an earlier attempt does not keep alive the attempt of a dead one."""
    beat("alive")
    task = running_task(worker_ids=["alive", "dead"], started_ago=120)
    abandoned_tasks_take_over()
    task.refresh_from_db()
    assert task.status == TaskResultStatus.READY


@pytest.mark.django_db
def test_a_task_claimed_within_the_lease_is_left_alone():
    """Just claimed, its worker's row not written yet: not a candidate until a lease has passed."""
    task = running_task(worker_ids=["starting"], started_ago=5)
    abandoned_tasks_take_over()
    task.refresh_from_db()
    assert task.status == TaskResultStatus.RUNNING


@pytest.mark.django_db
def test_after_the_last_attempt_the_task_fails_with_the_reason_and_task_finished_is_sent(finished_signals):
    """The third claimant stopped too: FAILED, the reason recorded as its error, and ``task_finished``
    sent with the backend's class as sender, as django-tasks-db does for a task that raised."""
    task = running_task(worker_ids=["w1", "w2", "w3"], started_ago=120)

    report = abandoned_tasks_take_over()

    task.refresh_from_db()
    assert report.failed == [str(task.pk)]
    assert task.status == TaskResultStatus.FAILED
    assert task.finished_at is not None
    assert task.exception_class_path == "prisma_glow.worker.lease.WorkerLostError"
    reason = "the worker running it stopped (no heartbeat for 60 s); gave up after 3 attempts"
    assert reason in task.traceback
    [(sender, result)] = finished_signals
    assert sender is DatabaseBackend
    assert str(result.id) == str(task.pk)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "prisma_glow.worker.lease.WorkerLostError"
    assert reason in result.errors[0].traceback


@pytest.mark.django_db
def test_the_number_of_attempts_is_a_setting(settings):
    settings.WORKER_MAX_ATTEMPTS = 1
    task = running_task(worker_ids=["only"], started_ago=120)
    abandoned_tasks_take_over()
    task.refresh_from_db()
    assert task.status == TaskResultStatus.FAILED
    assert "gave up after 1 attempt" in task.traceback


@pytest.mark.django_db
def test_a_receiver_that_raises_does_not_stop_the_takeover(finished_signals):
    """One broken ``task_finished`` receiver is logged; the other tasks are still handled."""

    def broken(sender, task_result, **kwargs):
        raise RuntimeError("receiver bug")

    task_finished.connect(broken)
    try:
        tasks = [running_task(worker_ids=["a", "b", "c"], started_ago=120) for _ in range(2)]
        report = abandoned_tasks_take_over()
    finally:
        task_finished.disconnect(broken)
    assert sorted(report.failed) == sorted(str(t.pk) for t in tasks)
    assert len(finished_signals) == 2


@pytest.mark.django_db
def test_takeover_is_limited_to_the_given_tasks():
    """A worker takes over only tasks of its own backend and queues."""
    task = running_task(worker_ids=["dead"], started_ago=120)
    abandoned_tasks_take_over(tasks=DBTaskResult.objects.filter(queue_name="other"))
    task.refresh_from_db()
    assert task.status == TaskResultStatus.RUNNING


# --- a worker restarted under the same id -----------------------------------------------------------
@pytest.mark.django_db
def test_a_starting_worker_rewrites_the_row_a_previous_process_with_its_id_left():
    """pid, host and start are this process's, and the times are the database's (not the row's old
    ones); a later beat only moves beat_at."""
    heartbeat_start(worker_id="box", backend_name="default", queues="*")
    long_ago = timezone.now() - timedelta(hours=2)
    WorkerHeartbeat.objects.filter(pk="box").update(
        pid=1, host="old-box", started_at=long_ago, beat_at=long_ago
    )

    heartbeat_start(worker_id="box", backend_name="default", queues="*")

    row = WorkerHeartbeat.objects.get(pk="box")
    assert (row.pid, row.host) == (os.getpid(), socket.gethostname())
    assert row.started_at > long_ago + timedelta(hours=1) and row.beat_at > long_ago + timedelta(hours=1)
    WorkerHeartbeat.objects.filter(pk="box").update(pid=1)
    heartbeat_beat(worker_id="box", backend_name="default", queues="*")
    assert WorkerHeartbeat.objects.get(pk="box").pid == 1


@pytest.mark.django_db
def test_a_restarted_worker_takes_back_the_tasks_its_previous_process_left(finished_signals):
    """Tasks last claimed under the worker's own id go back to the queue at once (however fresh its
    beat), or fail with the takeover's reason and signal when their attempts are spent; tasks of
    other workers, or that it claimed before another worker, are not touched."""
    beat("box")
    mine = running_task(worker_ids=["box"], started_ago=1)
    spent = running_task(worker_ids=["box", "other", "box"], started_ago=1)
    others = running_task(worker_ids=["box", "other"], started_ago=300)
    other_queue = running_task(worker_ids=["box"], started_ago=1)
    DBTaskResult.objects.filter(pk=other_queue.pk).update(queue_name="elsewhere")

    report = own_tasks_take_back(worker_id="box", tasks=DBTaskResult.objects.filter(queue_name="default"))

    assert report.requeued == [str(mine.pk)] and report.failed == [str(spent.pk)]
    statuses = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert statuses[mine.pk] == TaskResultStatus.READY
    assert statuses[spent.pk] == TaskResultStatus.FAILED
    assert statuses[others.pk] == statuses[other_queue.pk] == TaskResultStatus.RUNNING
    spent.refresh_from_db()
    assert spent.exception_class_path == "prisma_glow.worker.lease.WorkerLostError"
    assert (
        "the worker running it stopped (no heartbeat for 60 s); gave up after 3 attempts" in spent.traceback
    )
    [(sender, result)] = finished_signals
    assert sender is DatabaseBackend and str(result.id) == str(spent.pk)


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_under_the_id_of_a_killed_one_runs_its_task_again():
    """The previous process claimed the task and died; the new one, same id, runs it (second attempt)."""
    result = add.enqueue(1, 2)
    DBTaskResult.objects.get(pk=result.id).claim("batch-worker")

    batch_worker().run()

    row = DBTaskResult.objects.get(pk=result.id)
    assert (row.status, row.return_value) == (TaskResultStatus.SUCCESSFUL, 3)
    assert row.worker_ids == ["batch-worker", "batch-worker"]


# --- the takeover waits until its worker has beaten for a lease ------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db
def test_a_worker_takes_over_only_after_beating_without_a_break_for_a_lease():
    """Back from an outage longer than the lease, a worker finds every other beat stale: it takes
    nothing over until it has beaten for a lease; by then a live worker has beaten again (its task
    stays) and a dead one has not (its task is taken over). A gap longer than the lease between
    two beats starts the wait again."""
    beat("live", ago=90)
    beat("dead", ago=90)
    live_task = running_task(worker_ids=["live"], started_ago=300)
    dead_task = running_task(worker_ids=["dead"], started_ago=300)
    clock = FakeClock()
    keeper = LeaseKeeper(batch_worker(), clock=clock)

    def status(task):
        task.refresh_from_db()
        return task.status

    keeper.beat()  # the first beat after reconnecting
    assert not keeper.may_take_over()
    assert status(live_task) == status(dead_task) == TaskResultStatus.RUNNING
    for _ in range(11):  # beats every 5 s, up to 55 s
        clock.now += 5
        keeper.beat()
    assert status(dead_task) == TaskResultStatus.RUNNING
    beat("live")  # the live worker is back too
    clock.now += 5  # 60 s of beats
    keeper.beat()
    assert keeper.may_take_over()
    assert status(live_task) == TaskResultStatus.RUNNING
    assert status(dead_task) == TaskResultStatus.READY

    # Paused (or cut off) for longer than a lease: the run of beats starts again.
    DBTaskResult.objects.filter(pk=dead_task.pk).update(status=TaskResultStatus.RUNNING)
    clock.now += 61
    keeper.beat()
    assert not keeper.may_take_over() and status(dead_task) == TaskResultStatus.RUNNING
    clock.now += 60
    keeper.beat()
    assert status(dead_task) == TaskResultStatus.READY


# --- the worker ------------------------------------------------------------------------------------
def batch_worker() -> LeasedWorker:
    """A worker that runs the queued tasks, then stops (``db_worker --batch``)."""
    return LeasedWorker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="batch-worker",
        excluded_queue_names=[],
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_records_outcomes_and_signals_as_django_tasks_db_does(finished_signals):
    """A task that returns is SUCCESSFUL with its value, one that raises is FAILED with its traceback;
    ``task_finished`` carries the same senders as django-tasks-db's worker (the backend for a success,
    its class for a failure). A worker that stops cleanly removes its heartbeat."""
    succeeded, raised = add.enqueue(2, 3), fail.enqueue("no good")
    batch_worker().run()

    ok, bad = DBTaskResult.objects.get(pk=succeeded.id), DBTaskResult.objects.get(pk=raised.id)
    assert (ok.status, ok.return_value, ok.worker_ids) == (TaskResultStatus.SUCCESSFUL, 5, ["batch-worker"])
    assert (bad.status, bad.exception_class_path) == (TaskResultStatus.FAILED, "builtins.ValueError")
    assert "ValueError: no good" in bad.traceback
    senders = {str(result.id): sender for sender, result in finished_signals}
    assert isinstance(senders[str(succeeded.id)], DatabaseBackend)
    assert senders[str(raised.id)] is DatabaseBackend
    assert not WorkerHeartbeat.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_task_that_loses_its_database_connection_is_retried_a_bounded_number_of_times(finished_signals):
    """A task failing on a lost connection goes back to the queue; on the last attempt it fails with
    that error and ``task_finished`` is sent once."""
    result = lose_connection.enqueue()

    batch_worker().run()

    row = DBTaskResult.objects.get(pk=result.id)
    assert row.status == TaskResultStatus.FAILED
    assert row.worker_ids == ["batch-worker"] * 3
    assert row.exception_class_path == "django.db.utils.OperationalError"
    assert [str(r.id) for _, r in finished_signals] == [str(result.id)]


# --- fencing ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_outcome_of_a_run_that_was_taken_over_is_discarded():
    """A worker whose lease lapsed finishes late: the task, back in the queue (or claimed again), keeps
    the state the takeover gave it."""
    task = running_task(worker_ids=["slow"], started_ago=120)
    stale_claim = DBTaskResult.objects.get(pk=task.pk)
    abandoned_tasks_take_over()

    assert task_result_finish(stale_claim, return_value={"late": True}) is False

    task.refresh_from_db()
    assert task.status == TaskResultStatus.READY
    assert task.return_value is None
    # Claimed again by another worker: the first worker's late outcome still cannot land.
    task.claim("second")
    assert task_result_finish(stale_claim, error=RuntimeError("late")) is False
    assert task_result_finish(task, return_value={"ok": 1}) is True
    task.refresh_from_db()
    assert (task.status, task.return_value) == (TaskResultStatus.SUCCESSFUL, {"ok": 1})


# --- health ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_health_counts_live_workers_and_the_oldest_ready_task():
    assert health().as_dict() == {
        "needs_worker": True,
        "live_workers": 0,
        "local_workers": 0,
        "ready_tasks": 0,
        "oldest_ready_seconds": None,
        "ok": False,
    }
    beat("alive")
    beat("gone", ago=61)
    old = wait_for_release.enqueue("/nonexistent", "a")
    wait_for_release.enqueue("/nonexistent", "b")
    DBTaskResult.objects.filter(pk=old.id).update(enqueued_at=timezone.now() - timedelta(seconds=90))
    # Deferred to the future: not ready, not counted.
    wait_for_release.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("/nonexistent", "c")

    state = health()

    assert state.ok and state.live_workers == 1 and state.local_workers == 1
    assert state.ready_tasks == 2
    assert 90 <= state.oldest_ready_seconds < 120


@pytest.mark.django_db
def test_health_needs_no_worker_for_other_backends(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    state = health()
    assert state.ok and not state.needs_worker


@pytest.mark.django_db
def test_worker_health_command_exits_non_zero_without_a_live_worker(capsys):
    with pytest.raises(CommandError, match="No live worker"):
        call_command("worker_health")
    beat("elsewhere")
    WorkerHeartbeat.objects.filter(pk="elsewhere").update(host="another-host")
    call_command("worker_health")
    assert "Live workers: 1 (0 on this host)" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No live worker on this host"):
        call_command("worker_health", "--this-host")
    beat("here")
    capsys.readouterr()
    call_command("worker_health", "--this-host", "--json")
    assert json.loads(capsys.readouterr().out)["local_workers"] == 1


# --- database connections ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_postgresql_server_that_never_answers_fails_the_connection_instead_of_hanging():
    """On PostgreSQL, connections carry a connect timeout and TCP keepalives (a half-open link fails in
    about a minute); a server that accepts the TCP connection and never answers makes the connection
    fail after connect_timeout. SQLite's options are left as they were."""
    options = connection.settings_dict["OPTIONS"]
    if connection.vendor != "postgresql":
        assert not {"connect_timeout", "keepalives"} & set(options)
        return
    assert options["connect_timeout"] == 10
    assert (options["keepalives"], options["keepalives_count"]) == (1, 3)
    assert options["keepalives_idle"] + 3 * options["keepalives_interval"] == 60
    assert options["tcp_user_timeout"] == 60_000
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings_dict = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(port)}
        settings_dict["OPTIONS"] = {**options, "connect_timeout": 1}
        wrapper = type(connections["default"])(settings_dict)  # a throwaway, unregistered connection
        began = time.monotonic()
        try:
            with pytest.raises(OperationalError):
                wrapper.ensure_connection()
        finally:
            wrapper.close()
        assert time.monotonic() - began < 5


# --- wiring ----------------------------------------------------------------------------------------
def test_manage_py_db_worker_is_the_leased_worker():
    """``manage.py db_worker`` (README, Makefile, compose) resolves to this app's command."""
    assert get_commands()["db_worker"] == "prisma_glow.worker"


def test_a_lease_shorter_than_three_heartbeats_is_refused(settings):
    assert check_lease_settings() == []
    settings.WORKER_LEASE_SECONDS = 10
    assert [e.id for e in check_lease_settings()] == ["worker.E001"]
    settings.WORKER_LEASE_SECONDS, settings.WORKER_MAX_ATTEMPTS = 60, 0
    assert [e.id for e in check_lease_settings()] == ["worker.E002"]


def test_the_deployments_restart_the_worker_and_check_its_heartbeat():
    """docker-compose restarts the worker and checks it with worker_health; the systemd unit
    restarts it always."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    assert worker["command"][:3] == ["python", "manage.py", "db_worker"]
    assert worker["restart"] in {"always", "unless-stopped"}
    assert worker["healthcheck"]["test"][1:] == ["python", "manage.py", "worker_health", "--this-host"]

    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(ROOT / "deploy" / "prisma-glow-worker.service")
    assert unit["Service"]["Restart"] == "always"
    assert "manage.py db_worker" in unit["Service"]["ExecStart"]
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
