"""The task queue's health, for readiness checks and ``manage.py worker_health``."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import Now
from django.tasks import task_backends
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from prisma_glow.worker.models import WorkerHeartbeat


@dataclass(frozen=True)
class QueueHealth:
    """What a readiness probe needs to know about background work.

    ``live_workers``: workers that beat within the lease (``WORKER_LEASE_SECONDS``);
    ``local_workers``: those of them on this host; ``ready_tasks`` and ``oldest_ready_seconds``:
    the queue waiting to be run (``None`` when empty); ``needs_worker``: whether the configured
    backend is the database one (other backends, such as the immediate one, need no worker).
    """

    needs_worker: bool
    live_workers: int = 0
    local_workers: int = 0
    ready_tasks: int = 0
    oldest_ready_seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Tasks will be run: no worker is needed, or at least one is alive."""
        return not self.needs_worker or self.live_workers > 0

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def health(*, backend_name: str = "default") -> QueueHealth:
    """The queue's health for the task backend ``backend_name``, in two queries.

    Raises the database's error when it cannot be reached (the caller reports the database as down).
    """
    if not isinstance(task_backends[backend_name], DatabaseBackend):
        return QueueHealth(needs_worker=False)
    now = timezone.now()
    # Beats are on the database's clock (prisma_glow.worker.lease), and so is the cutoff.
    live = WorkerHeartbeat.objects.filter(
        backend_name=backend_name, beat_at__gte=Now() - timedelta(seconds=settings.WORKER_LEASE_SECONDS)
    ).aggregate(
        live=Count("pk"),
        local=Count("pk", filter=Q(host=socket.gethostname()[:255])),
    )
    never = get_date_max()
    ready = (
        DBTaskResult.objects.ready()
        .filter(backend_name=backend_name)
        .aggregate(
            count=Count("pk"),
            # A task waits from its enqueueing, or from its run_after when it was deferred.
            enqueued=Min("enqueued_at", filter=Q(run_after=never)),
            deferred=Min("run_after", filter=~Q(run_after=never)),
        )
    )
    since = [t for t in (ready["enqueued"], ready["deferred"]) if t is not None]
    return QueueHealth(
        needs_worker=True,
        live_workers=live["live"],
        local_workers=live["local"],
        ready_tasks=ready["count"],
        oldest_ready_seconds=round(max(0.0, (now - min(since)).total_seconds()), 3) if since else None,
    )
