"""Real ``manage.py db_worker`` processes on the test's PostgreSQL database: a worker killed with
SIGKILL mid-task, a task outliving the lease on a live worker, retries running out, and a database
outage. Short heartbeats and leases come from the environment, as in production."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from prisma_glow.worker.models import WorkerHeartbeat
from tests.platform.worker_tasks import wait_for_release

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.25
LEASE = 2.0
# A worker process starts in about a second; on a loaded machine (several test runs sharing two
# cores) it has taken over twenty.
STARTUP_TIMEOUT = 90.0


@pytest.fixture(autouse=True)
def _postgresql_only(settings):
    """Row locks, killed backends and several processes on one database: PostgreSQL only (an
    in-memory SQLite test database is not shared with other processes)."""
    if connection.vendor != "postgresql":
        pytest.skip("worker process tests run on PostgreSQL only (set DATABASE_URL)")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_database_url(application_name: str) -> str:
    """The URL of the test database (pytest-django's, with any xdist suffix) for a subprocess."""
    s = connection.settings_dict
    password = f":{quote(s['PASSWORD'], safe='')}" if s.get("PASSWORD") else ""
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{quote(s['USER'], safe='')}{password}@{host}{port}/{s['NAME']}?application_name={application_name}"


test_database_url.__test__ = False  # a helper, not a test


class Workers:
    """``db_worker`` subprocesses against the test database, each logging to ``<id>.log``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, worker_id: str, **env: str) -> subprocess.Popen:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PRISMA_GLOW_WORKER_"))
        }
        environment = {
            **base,
            "DATABASE_URL": test_database_url(f"glow-test-{worker_id}"),
            "DJANGO_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
            "DJANGO_LOG_LEVEL": "INFO",
            "PRISMA_GLOW_WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT),
            "PRISMA_GLOW_WORKER_LEASE_SECONDS": str(LEASE),
            "PRISMA_GLOW_WORKER_RECONNECT_MAX_SECONDS": "1",
            "WORKER_TEST_SIGNAL_LOG": str(self.folder / "task_finished.jsonl"),
            **env,
        }
        log = open(self.folder / f"{worker_id}.log", "w")  # noqa: SIM115 -- closed with the process
        command = [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--no-reload"]
        command += ["--interval", "0.1", "--no-startup-delay", "--worker-id", worker_id]
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes[worker_id] = process
        return process

    def wait_until_beating(self, *worker_ids: str) -> None:
        self.wait_for(
            lambda: WorkerHeartbeat.objects.filter(pk__in=worker_ids).count() == len(worker_ids),
            f"workers {worker_ids} to start beating",
            timeout=STARTUP_TIMEOUT,
        )

    def kill(self, worker_id: str) -> None:
        process = self.processes[worker_id]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def log(self, worker_id: str) -> str:
        return (self.folder / f"{worker_id}.log").read_text()

    def logs(self) -> str:
        return "\n".join(f"--- {worker_id}\n{self.log(worker_id)}" for worker_id in self.processes)

    def wait_for(self, predicate, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path):
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def started(folder: Path, name: str) -> list[int]:
    """The process ids that started the task ``name`` so far, in order."""
    path = folder / f"{name}.started"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def task_row(result) -> DBTaskResult:
    return DBTaskResult.objects.get(pk=result.id)


def test_a_killed_workers_task_is_taken_over_by_the_other_worker_and_completes(workers, tmp_path):
    """Two workers side by side; the one running the task is SIGKILLed; once its lease lapses the other
    runs the task again and it completes, with both workers on record."""
    workers.start("worker-a")
    workers.start("worker-b")
    workers.wait_until_beating("worker-a", "worker-b")
    result = wait_for_release.enqueue(str(tmp_path), "job")
    [first_pid] = workers.wait_for(lambda: started(tmp_path, "job"), "the task to start")
    runner = task_row(result).worker_ids[-1]
    other = "worker-b" if runner == "worker-a" else "worker-a"
    assert workers.processes[runner].pid == first_pid

    workers.kill(runner)
    killed_at = time.monotonic()
    pids = workers.wait_for(
        lambda: len(started(tmp_path, "job")) == 2 and started(tmp_path, "job"), "a takeover"
    )
    taken_over_after = time.monotonic() - killed_at
    (tmp_path / "job.release").touch()
    workers.wait_for(lambda: task_row(result).status == TaskResultStatus.SUCCESSFUL, "the task to succeed")

    row = task_row(result)
    assert row.worker_ids == [runner, other]
    assert pids[1] == workers.processes[other].pid == row.return_value["pid"]
    # Taken over once the lease lapsed (the last beat was at most a heartbeat before the kill), not
    # before, and promptly after.
    assert LEASE - 2 * HEARTBEAT < taken_over_after < LEASE + 10, taken_over_after
    assert "back in the queue after attempt 1 of 3" in workers.log(other)


def test_a_worker_restarted_under_the_same_id_runs_its_killed_predecessors_task_again(workers, tmp_path):
    """``--worker-id "$HOSTNAME"`` in a container: worker-a is SIGKILLed mid-task and restarted under
    the same id, beside worker-b. The new worker-a's beats do not keep the dead run RUNNING: its row
    names the new process, the task goes back to the queue at its start and runs again."""
    workers.start("worker-a")
    workers.wait_until_beating("worker-a")
    first_start = WorkerHeartbeat.objects.get(pk="worker-a").started_at
    result = wait_for_release.enqueue(str(tmp_path), "job")
    workers.wait_for(lambda: started(tmp_path, "job"), "the task to start")
    workers.kill("worker-a")

    restarted = workers.start("worker-a")
    workers.start("worker-b")
    workers.wait_for(
        lambda: "Starting worker worker_id=worker-a" in workers.log("worker-a"),
        "the restarted worker to start",
        timeout=STARTUP_TIMEOUT,
    )
    workers.wait_until_beating("worker-b")
    pids = workers.wait_for(
        lambda: len(started(tmp_path, "job")) == 2 and started(tmp_path, "job"),
        "the task to run again",
        # A lease for worker-b to see the dead run, then a poll to take it: 2 s on an idle machine;
        # the margin is for a loaded one (a run kept alive by the new process's beats never ends).
        timeout=30.0,
    )
    (tmp_path / "job.release").touch()
    workers.wait_for(lambda: task_row(result).status == TaskResultStatus.SUCCESSFUL, "the task to succeed")

    row = task_row(result)
    assert row.worker_ids[0] == "worker-a" and len(row.worker_ids) == 2
    assert pids[1] == workers.processes[row.worker_ids[1]].pid == row.return_value["pid"]
    heartbeat = WorkerHeartbeat.objects.get(pk="worker-a")
    assert heartbeat.pid == restarted.pid and heartbeat.started_at > first_start
    assert "a previous process with this id left 1 task(s) running; 1 back in the queue" in workers.log(
        "worker-a"
    )


def test_a_live_workers_task_that_outlasts_the_lease_is_not_taken_over(workers, tmp_path):
    """The task runs three leases long on a live worker while another worker idles: it runs once."""
    workers.start("worker-a")
    workers.start("worker-b")
    workers.wait_until_beating("worker-a", "worker-b")
    result = wait_for_release.enqueue(str(tmp_path), "long")
    workers.wait_for(lambda: started(tmp_path, "long"), "the task to start")

    time.sleep(3 * LEASE)
    assert task_row(result).status == TaskResultStatus.RUNNING
    (tmp_path / "long.release").touch()
    workers.wait_for(lambda: task_row(result).status == TaskResultStatus.SUCCESSFUL, "the task to succeed")

    assert len(started(tmp_path, "long")) == 1
    assert len(task_row(result).worker_ids) == 1
    assert "taken over" not in workers.logs()


def test_when_every_attempt_loses_its_worker_the_task_fails_with_the_reason(workers, tmp_path):
    """Two attempts allowed; both workers that ran the task are killed; the third worker fails it with
    the reason and ``task_finished`` fires in its process, as for a task that raised."""
    for worker_id in ("worker-a", "worker-b", "worker-c"):
        workers.start(worker_id, PRISMA_GLOW_WORKER_MAX_ATTEMPTS="2")
    workers.wait_until_beating("worker-a", "worker-b", "worker-c")
    result = wait_for_release.enqueue(str(tmp_path), "doomed")

    workers.wait_for(lambda: len(started(tmp_path, "doomed")) == 1, "the first attempt")
    workers.kill(task_row(result).worker_ids[-1])
    workers.wait_for(lambda: len(started(tmp_path, "doomed")) == 2, "the second attempt")
    workers.kill(task_row(result).worker_ids[-1])
    workers.wait_for(lambda: task_row(result).status == TaskResultStatus.FAILED, "the task to fail")

    row = task_row(result)
    assert len(row.worker_ids) == 2 and len(started(tmp_path, "doomed")) == 2
    reason = f"the worker running it stopped (no heartbeat for {LEASE:g} s); gave up after 2 attempts"
    assert row.exception_class_path == "prisma_glow.worker.lease.WorkerLostError"
    assert reason in row.traceback
    # The survivor records FAILED, then sends the signal: its receiver's line may land just after.
    signal_log = tmp_path / "task_finished.jsonl"
    # The receiver opens the file (it exists) before its line is written: wait for the whole line.
    workers.wait_for(
        lambda: signal_log.exists() and signal_log.read_text().endswith("\n"), "task_finished in the survivor"
    )
    [signal_line] = [json.loads(line) for line in signal_log.read_text().splitlines()]
    assert signal_line["id"] == str(result.id)
    assert signal_line["status"] == "FAILED"
    assert signal_line["sender"] == "django_tasks_db.backend.DatabaseBackend"
    assert reason in signal_line["errors"][0]


def test_the_worker_survives_a_database_outage_and_carries_on(workers, tmp_path):
    """For three seconds every connection the worker opens is terminated by the server, while its task
    finishes: it reconnects, records the outcome (without running the task again), stays up and runs
    the next task."""
    workers.start("worker-db")
    workers.wait_until_beating("worker-db")
    result = wait_for_release.enqueue(str(tmp_path), "during")
    workers.wait_for(lambda: started(tmp_path, "during"), "the task to start")

    terminated = 0
    outage_end = time.monotonic() + 3.0
    while time.monotonic() < outage_end:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                ["glow-test-worker-db"],
            )
            terminated += cursor.fetchone()[0]
        if outage_end - time.monotonic() < 2.0:
            (tmp_path / "during.release").touch()  # the task ends while the database is away
        time.sleep(0.05)
    assert terminated >= 2

    workers.wait_for(
        lambda: task_row(result).status == TaskResultStatus.SUCCESSFUL, "the outcome to be recorded"
    )
    assert len(started(tmp_path, "during")) == 1
    assert task_row(result).worker_ids == ["worker-db"]

    (tmp_path / "after.release").touch()
    after = wait_for_release.enqueue(str(tmp_path), "after")
    workers.wait_for(lambda: task_row(after).status == TaskResultStatus.SUCCESSFUL, "the next task")
    assert workers.processes["worker-db"].poll() is None
    log = workers.log("worker-db")
    assert "the database is unavailable" in log
    assert "reconnected to the database; carrying on" in log
