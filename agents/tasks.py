"""Background work of the agents app, run by Django's Tasks API (``manage.py db_worker``).

``resume_tool_call`` continues a run paused for a tool call's approval once a person decided it
(``agents.runtime.approvals``); the decision enqueues it in its own transaction, so it runs only
once the decision is committed. Before resuming, it expires the requests nobody answered in time
(the worker's sweep; ``manage.py expire_tool_approvals`` does the same from a timer). Running it
twice is harmless: ``pipeline.resume`` claims the paused run in a transaction, and a second run
finds nothing to resume.
"""

from __future__ import annotations

from django.tasks import task

from agents.runtime.pipeline import resume
from agents.services import tool_approvals_expire


@task
def resume_tool_call(approval_id: int) -> dict:
    """Resume the run paused at ``approval_id``; returns its execution's id and status (None when there
    was nothing to resume)."""
    tool_approvals_expire()
    execution = resume(approval_id)
    if execution is None:
        return {"approval_id": approval_id, "execution_id": None, "status": None}
    return {"approval_id": approval_id, "execution_id": execution.pk, "status": execution.status}
