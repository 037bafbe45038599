"""The background worker's lease: one heartbeat row per running worker process."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """A running ``db_worker`` process, keyed by the worker id django-tasks-db records on each task it
    claims (``DBTaskResult.worker_ids``). The worker refreshes ``beat_at`` every
    ``WORKER_HEARTBEAT_SECONDS`` from a thread of its own; a RUNNING task whose worker has not beaten
    for ``WORKER_LEASE_SECONDS`` is taken over by another worker (``prisma_glow.worker.lease``). A
    worker that stops cleanly deletes its row; a killed one leaves it stale, and stale rows are
    removed after a day."""

    worker_id = models.CharField(primary_key=True, max_length=64)
    pid = models.PositiveIntegerField()
    host = models.CharField(max_length=255)
    backend_name = models.CharField(max_length=32)
    queues = models.CharField(max_length=255, help_text="The queues it serves, comma-separated ('*': all).")
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"worker {self.worker_id} (pid {self.pid} on {self.host})"
