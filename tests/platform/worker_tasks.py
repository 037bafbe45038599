"""Tasks the worker tests enqueue; the ``db_worker`` processes they start import this module.

A task records each start (a line with the running process's id in ``<name>.started``) and waits
for the test to release it (``<name>.release``), so the test decides when it ends. When
``WORKER_TEST_SIGNAL_LOG`` is set, every ``task_finished`` the process sends is appended there as
a JSON line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django.dispatch import receiver
from django.tasks import task
from django.tasks.signals import task_finished


@task
def wait_for_release(directory: str, name: str) -> dict:
    """Note the start, then wait until ``<name>.release`` exists in ``directory``."""
    folder = Path(directory)
    with open(folder / f"{name}.started", "a") as started:
        started.write(f"{os.getpid()}\n")
    while not (folder / f"{name}.release").exists():
        time.sleep(0.05)
    return {"pid": os.getpid()}


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
def lose_connection() -> None:
    """Fails the way a task does when the database goes away under it."""
    from django.db import OperationalError

    raise OperationalError("server closed the connection unexpectedly")


@receiver(task_finished, dispatch_uid="worker-tests-signal-log")
def log_task_finished(sender, task_result, **kwargs) -> None:
    path = os.environ.get("WORKER_TEST_SIGNAL_LOG")
    if not path:
        return
    line = {
        "id": str(task_result.id),
        "status": str(task_result.status),
        "sender": f"{sender.__module__}.{sender.__qualname__}" if isinstance(sender, type) else repr(sender),
        "errors": [error.traceback for error in task_result.errors],
    }
    with open(path, "a") as log:
        log.write(json.dumps(line) + "\n")
