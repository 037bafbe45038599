"""The console in a real browser: a run whose model calls a tool that requires approval pauses, the
turn shows the call's arguments and an Approve button, and once approved the worker (a real worker
loop, in a thread) resumes the run and the turn shows the answer."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agents.models import AgentTool, ToolApproval
from tests.factories import AgentFactory, PersonaFactory
from tools.models import Tool

pytestmark = pytest.mark.e2e


def test_the_console_approves_a_paused_tool_call(signed_in_page, org, editor, watcher, task_worker):
    page = signed_in_page
    agent = AgentFactory(organization=org, name="VAT adviser", status="active")
    PersonaFactory(agent=agent, is_active=True)
    calculator = Tool.objects.get(slug="vat-calculator", organization=None)
    AgentTool.objects.create(agent=agent, tool=calculator, requires_approval=True)
    page.goto(reverse("admin:console:index") + f"?agent={agent.pk}")
    message = page.get_by_label("Message", exact=True)
    message.fill("What is the VAT on €1,000 at 19%?")
    message.press("Enter")
    turn = page.locator(".console-turn--awaiting_approval").last
    expect(turn).to_contain_text("Waiting for approval", timeout=30_000)
    expect(turn.locator(".console-approval-arguments")).to_contain_text('"net": "1000.00"')
    approval = ToolApproval.objects.get()
    assert approval.status == "pending"
    task_worker.start()
    turn.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("The call of “VAT calculator” was approved")).to_be_visible(timeout=30_000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        approval.execution.refresh_from_db()
        if approval.execution.status == "completed":
            break
        time.sleep(0.2)
    assert approval.execution.status == "completed", approval.execution.error
    page.reload()
    done = page.locator(f"#turn-{approval.execution_id}")
    expect(done).to_contain_text("€190.00")
    expect(done.locator(".console-approval")).to_have_count(0)
    assert watcher.take() == []
