"""Background work of the agents app, run by Django's Tasks API (``manage.py db_worker``).

``resume_tool_call`` continues a run paused for a tool call's approval once a person decided it
(``agents.runtime.approvals``); the decision enqueues it in its own transaction, so it runs only
once the decision is committed. Before resuming, it expires the requests nobody answered in time.
Running it twice is harmless: ``pipeline.resume`` claims the paused run in a transaction, and a second
run finds nothing to resume.

``expire_tool_calls`` is the worker's sweep: each pause schedules it for the request's deadline
(``schedule_expiry``, on a backend that can run a task later, as django-tasks-db can), so a run nobody
answers ends ``failed`` on time without a timer; ``manage.py expire_tool_approvals`` does the same
from one, for other backends.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
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


@task
def expire_tool_calls() -> dict:
    """Expire every tool call that waited for approval past its deadline (their runs end failed)."""
    return {"expired": tool_approvals_expire()}


def schedule_expiry(when: dt.datetime) -> bool:
    """Run ``expire_tool_calls`` at ``when`` (just after a request's deadline), once the caller's
    transaction commits; False when the tasks backend cannot run a task later (then the command, and
    the sweep before each resumed run, expire requests)."""
    if not expire_tool_calls.get_backend().supports_defer:
        return False
    transaction.on_commit(lambda: expire_tool_calls.using(run_after=when).enqueue())
    return True
