"""``manage.py db_worker``: django-tasks-db's command of the same name (same options), running
:class:`prisma_glow.worker.runner.LeasedWorker` — heartbeats, takeover of tasks whose worker stopped,
and reconnection after a database outage. This app is listed before ``django_tasks_db`` in
INSTALLED_APPS, so this command is the one ``manage.py`` finds."""

from __future__ import annotations

import logging
import os

from django.core.management.base import CommandError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

from prisma_glow.worker.runner import LeasedWorker

logger = logging.getLogger("prisma_glow.worker")


class Command(db_worker.Command):
    help = "Run the background worker (database tasks), with a lease and reconnection after outages."

    def configure_logging(self, verbosity: int) -> None:
        super().configure_logging(verbosity)
        logger.setLevel({0: logging.CRITICAL, 1: logging.INFO}.get(verbosity, logging.DEBUG))

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options,
    ) -> None:
        # The same steps as django-tasks-db's handle(), with our worker class.
        self.configure_logging(verbosity)
        if reload and batch:
            logger.warning("--reload and --batch cannot be specified together. Disabling autoreload.")
            reload = False
        queue_names = queue_name.split(",")
        excluded_queue_names = exclude_queues.split(",") if exclude_queues else []
        if excluded_queue_names and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = LeasedWorker(
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded_queue_names,
        )
        if reload:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()  # only the reloader's child runs tasks
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
