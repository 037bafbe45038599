"""The background worker: ``manage.py db_worker`` (django-tasks-db's worker with a lease and database
reconnection), its heartbeats, and the task queue's health.

``prisma_glow.worker.health()`` returns a :class:`~prisma_glow.worker.health.QueueHealth` (live
workers, ready tasks, the oldest one's wait, ``ok``) for readiness probes; see docs/architecture.md §10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prisma_glow.worker.health import QueueHealth


def health(*, backend_name: str = "default") -> QueueHealth:
    """The task queue's health (imported lazily: this package is imported before the app registry)."""
    from prisma_glow.worker.health import health as queue_health

    return queue_health(backend_name=backend_name)
