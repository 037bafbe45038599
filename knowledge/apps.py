from django.apps import AppConfig

from knowledge import screening


class KnowledgeConfig(AppConfig):
    name = "knowledge"

    def ready(self) -> None:
        from django.tasks.signals import task_finished

        from knowledge.tasks import fail_document_of_failed_task

        task_finished.connect(
            fail_document_of_failed_task, dispatch_uid="knowledge.fail_document_of_failed_task"
        )

    def register_screener(self, screener: screening.Screener | None) -> None:
        """The screening hook as other apps reach it (``knowledge.screening``): an app that screens
        passages registers here from its own ``ready()``, without importing knowledge."""
        screening.register(screener)
