from django.apps import AppConfig
from django.core import checks


class WorkerConfig(AppConfig):
    """The background worker's lease (heartbeats, takeover of abandoned tasks) and its commands.

    Listed before ``django_tasks_db`` in INSTALLED_APPS so that its ``db_worker`` command replaces
    django-tasks-db's one of the same name.
    """

    name = "prisma_glow.worker"
    label = "worker"
    verbose_name = "Background worker"

    def ready(self) -> None:
        checks.register(check_lease_settings)


def check_lease_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A lease shorter than a few heartbeats would take tasks away from live workers."""
    from django.conf import settings

    errors = []
    heartbeat, lease = settings.WORKER_HEARTBEAT_SECONDS, settings.WORKER_LEASE_SECONDS
    if heartbeat <= 0 or lease < 3 * heartbeat:
        errors.append(
            checks.Error(
                f"PRISMA_GLOW_WORKER_LEASE_SECONDS ({lease:g}) must be at least three heartbeats "
                f"(PRISMA_GLOW_WORKER_HEARTBEAT_SECONDS = {heartbeat:g}, which must be positive); "
                "otherwise a live worker's task could be taken over between two beats.",
                id="worker.E001",
            )
        )
    if settings.WORKER_MAX_ATTEMPTS < 1:
        errors.append(checks.Error("PRISMA_GLOW_WORKER_MAX_ATTEMPTS must be at least 1.", id="worker.E002"))
    return errors
