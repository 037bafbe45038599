"""Background work of the knowledge app, run by Django's Tasks API.

With the default database backend (django-tasks-db) tasks wait in the database until a worker runs
them: start one with ``python manage.py db_worker`` (see the README). Tests use the immediate backend,
which runs a task as soon as it is enqueued.

A document never stays ``processing``: when a ``process_document`` task ends ``FAILED`` (its worker
was stopped mid-task, or the queue gave up retrying it), :func:`fail_document_of_failed_task`, a
receiver of Django's ``task_finished`` signal, fails the document with the reason; and each task
first fails the documents whose worker vanished without any signal (``kill -9``), see
``services.document_fail_stuck``.
"""

from __future__ import annotations

import logging

from django.tasks import task
from django.tasks.base import TaskResultStatus

from knowledge.services import document_fail_stuck, document_fail_unfinished, document_process

logger = logging.getLogger(__name__)


@task
def process_document(document_id: int) -> dict:
    """Parse, chunk and index one document; returns its final status."""
    document_fail_stuck()
    document = document_process(document_id)
    if document is None:
        return {"document_id": document_id, "status": "deleted"}
    return {
        "document_id": document.pk,
        "status": document.status,
        "chunk_count": document.chunk_count,
        "error": document.error,
    }


def _failure_reason(task_result) -> str:
    """What to show on the document: the task's last error in one line, and what to do."""
    detail = ""
    errors = getattr(task_result, "errors", None) or []
    if errors:
        error = errors[-1]
        lines = [line.strip() for line in (error.traceback or "").strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else error.exception_class_path.rpartition(".")[2]
    detail = detail or "the task failed"
    return f"Processing stopped before it finished ({detail[:300]}). Reindex the document to try again."


def fail_document_of_failed_task(sender, task_result, **kwargs) -> None:
    """Receiver of ``django.tasks.signals.task_finished``: a FAILED ``process_document`` fails its
    document (when it is still pending or processing) with the reason."""
    if task_result.status != TaskResultStatus.FAILED:
        return
    if task_result.task.module_path != process_document.module_path:
        return
    document_id = task_result.kwargs.get("document_id")
    if document_id is None and task_result.args:
        document_id = task_result.args[0]
    if document_id is None:
        return
    try:
        document_fail_unfinished(document_id=int(document_id), reason=_failure_reason(task_result))
    except Exception:
        # The receiver runs inside the worker's error handling; a database outage here must not
        # hide the task's own failure. document_fail_stuck catches the document later.
        logger.exception("Could not mark document %s failed after its task failed", document_id)
