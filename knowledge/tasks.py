"""Background work of the knowledge app, run by Django's Tasks API.

With the default database backend (django-tasks-db) tasks wait in the database until a worker runs
them: start one with ``python manage.py db_worker`` (see the README). Tests use the immediate backend,
which runs a task as soon as it is enqueued.
"""

from __future__ import annotations

from django.tasks import task


@task
def process_document(document_id: int) -> dict:
    """Parse, chunk and index one document; returns its final status."""
    from knowledge.services import document_process

    document = document_process(document_id)
    if document is None:
        return {"document_id": document_id, "status": "deleted"}
    return {
        "document_id": document.pk,
        "status": document.status,
        "chunk_count": document.chunk_count,
        "error": document.error,
    }
