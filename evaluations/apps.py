from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"

    def ready(self) -> None:
        from django.tasks.signals import task_finished

        from evaluations.tasks import fail_run_of_failed_task

        task_finished.connect(fail_run_of_failed_task, dispatch_uid="evaluations.fail_run_of_failed_task")
        # The agents app refuses an activation that a registered gate refuses (agents.activation).
        # Agents never imports this app: the gate is registered here.
        from agents.activation import register_gate
        from evaluations.gate import evaluation_gate

        register_gate(evaluation_gate, name="evaluations")
