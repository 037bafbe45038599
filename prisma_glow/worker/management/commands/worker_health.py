"""``manage.py worker_health [--this-host] [--json]``: whether background tasks are being run.

Exits 0 when a worker beat within the lease (with ``--this-host``: a worker on this machine, which
is what a container's health check asks), 1 otherwise or when the database cannot be reached.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from prisma_glow.worker.health import health


class Command(BaseCommand):
    help = "Report live task workers and the queue; exit 1 when no worker is alive (health checks)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--this-host", action="store_true", help="Require a live worker on this host (container checks)."
        )
        parser.add_argument("--backend", default="default", help="The task backend (default: %(default)s).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the figures as JSON.")

    def handle(self, *args, this_host: bool, backend: str, as_json: bool, **options):
        try:
            state = health(backend_name=backend)
        except DatabaseError as exc:
            raise CommandError(f"The database cannot be reached: {exc}".strip())
        if as_json:
            self.stdout.write(json.dumps(state.as_dict(), sort_keys=True))
        elif not state.needs_worker:
            self.stdout.write(f"The task backend '{backend}' runs tasks without a worker.")
        else:
            waiting = (
                f", the oldest waiting {state.oldest_ready_seconds:.0f} s"
                if state.oldest_ready_seconds is not None
                else ""
            )
            self.stdout.write(
                f"Live workers: {state.live_workers} ({state.local_workers} on this host); "
                f"ready tasks: {state.ready_tasks}{waiting}."
            )
        if not state.needs_worker:
            return
        if this_host and state.local_workers == 0:
            raise CommandError("No live worker on this host (no heartbeat within the lease).")
        if state.live_workers == 0:
            raise CommandError("No live worker: queued tasks are not being run.")
