"""Background work of the evaluations app (Django's Tasks API; see docs/architecture.md §10).

``run_suite`` runs one evaluation run (``services.run_execute``); it is idempotent, so a run taken over
after its worker died goes on from the cases it has not recorded. When the task ends ``FAILED`` (it
raised, or the queue gave up after the worker kept dying), ``fail_run_of_failed_task``, a receiver of
``task_finished``, ends the run ``error`` with the reason: a run never stays ``running``.
"""

from __future__ import annotations

from django.tasks import task
from django.tasks.base import TaskResultStatus

from evaluations.services import run_execute, run_fail_unfinished


@task
def run_suite(run_id: int) -> dict:
    """Run every case of evaluation run ``run_id``; returns its outcome."""
    run = run_execute(run_id=run_id)
    if run is None:
        return {"run_id": run_id, "status": "deleted"}
    return {"run_id": run.pk, "status": run.status, "done": run.done, "pass_rate": str(run.pass_rate)}


def _failure_reason(task_result) -> str:
    errors = getattr(task_result, "errors", None) or []
    detail = ""
    if errors:
        lines = [line.strip() for line in (errors[-1].traceback or "").strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else errors[-1].exception_class_path.rpartition(".")[2]
    return f"The run stopped before it finished ({(detail or 'the task failed')[:300]}). Start a new run."


def fail_run_of_failed_task(sender, task_result, **kwargs) -> None:
    """Receiver of ``django.tasks.signals.task_finished``: a FAILED ``run_suite`` ends its run ``error``."""
    if task_result.status != TaskResultStatus.FAILED:
        return
    if task_result.task.module_path != run_suite.module_path:
        return
    run_id = task_result.kwargs.get("run_id")
    if run_id is None and task_result.args:
        run_id = task_result.args[0]
    if run_id is not None:
        run_fail_unfinished(run_id=int(run_id), reason=_failure_reason(task_result))
