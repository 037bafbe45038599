"""A paused run resumes in another process: the decision enqueues its task in the database, and a real
``manage.py db_worker`` (a subprocess of its own, with nothing of this process's memory) continues
the run from its stored state, calling the local model server and the local tool peer of this test.
PostgreSQL only: an in-memory SQLite test database is not shared with other processes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from agents import services
from agents.models import Execution, ToolApproval
from tests.agents.runtime.test_openai_provider import remote  # noqa: F401 (the fixture)
from tests.agents.runtime.test_tool_approval import CALL, QUESTION, paying_agent, payments  # noqa: F401
from tests.conftest import client_for
from tests.platform.test_worker_processes import STARTUP_TIMEOUT, workers  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only(settings):
    if connection.vendor != "postgresql":
        pytest.skip("worker process tests run on PostgreSQL only (set DATABASE_URL)")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_a_worker_process_resumes_the_run_from_its_stored_state(paying_agent, editor, workers, httpserver):  # noqa: F811
    agent, model, _, received = paying_agent
    response = client_for(editor).post(
        f"/api/v1/agents/{agent.pk}/execute/", {"input": QUESTION}, format="json"
    )
    assert response.status_code == 202
    execution_id = response.json()["id"]
    approval = ToolApproval.objects.get(execution_id=execution_id)
    # The pause scheduled the worker's expiry sweep for the request's deadline.
    sweep = DBTaskResult.objects.get(task_path="agents.tasks.expire_tool_calls")
    assert sweep.status == "READY" and sweep.run_after == approval.expires_at + dt.timedelta(seconds=1)
    services.tool_approval_approve(approval=approval, actor=editor)
    task = DBTaskResult.objects.get(task_path="agents.tasks.resume_tool_call")
    assert task.status == "READY" and task.args_kwargs["kwargs"] == {"approval_id": approval.pk}
    assert received == [] and len(model.bodies) == 1  # nothing resumed in this process

    workers.start(
        "approve-worker",
        PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS=f"{httpserver.host}:{httpserver.port}",
        PRISMA_GLOW_HTTP_TOOL_ALLOWED_HOSTS="127.0.0.1",
    )
    execution = workers.wait_for(
        lambda: Execution.objects.filter(pk=execution_id, status="completed").first(),
        "the worker to finish the resumed run",
        timeout=STARTUP_TIMEOUT,
    )
    assert "PAY-1" in execution.output and received == [CALL]
    assert len(model.bodies) == 2 and model.bodies[1]["messages"][-1]["role"] == "tool"
    assert execution.resumed_at is not None
    assert [s.ordinal for s in execution.steps.order_by("ordinal")] == list(
        range(1, execution.steps.count() + 1)
    )
    workers.wait_for(
        lambda: DBTaskResult.objects.filter(pk=task.pk, status="SUCCESSFUL").exists(), "the task's outcome"
    )
    assert ToolApproval.objects.get(pk=approval.pk).state == ""
    assert DBTaskResult.objects.get(pk=sweep.pk).status == "READY"  # not due yet: it waits


def test_the_worker_expires_an_unanswered_call_at_its_deadline(paying_agent, editor, workers, settings):  # noqa: F811
    """Nobody decides and no timer runs the command: the sweep the pause scheduled ends the run."""
    agent, _, _, received = paying_agent
    settings.TOOL_APPROVAL_HOURS = 1 / 3600  # one second
    response = client_for(editor).post(
        f"/api/v1/agents/{agent.pk}/execute/", {"input": QUESTION}, format="json"
    )
    execution_id = response.json()["id"]
    workers.start("approve-sweeper")
    execution = workers.wait_for(
        lambda: Execution.objects.filter(pk=execution_id, status="failed").first(),
        "the worker to expire the call",
        timeout=STARTUP_TIMEOUT,
    )
    assert "expired unanswered" in execution.error and received == []
    assert ToolApproval.objects.get(execution_id=execution_id).status == "expired"
