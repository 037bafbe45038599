from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"

    def ready(self) -> None:
        from django.tasks.signals import task_finished

        from knowledge.tasks import fail_document_of_failed_task

        task_finished.connect(
            fail_document_of_failed_task, dispatch_uid="knowledge.fail_document_of_failed_task"
        )
