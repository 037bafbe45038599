"""Browser test of a step-up in the middle of a deprecation: the editor presses Deprecate on the
agent's page, the admin asks for a code from her authenticator app, a wrong code changes nothing, the
right one deprecates the agent without anything else to type again. (Approving an activation with a
code: tests/e2e/test_approvals.py.)"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from agents.models import Agent
from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import AgentFactory, PersonaFactory, TOTPDeviceFactory, release_now, totp_code


def test_deprecating_an_agent_asks_for_a_code_then_deprecates_it(
    page, context, live_server, org, editor, watcher
):
    """ASVS 5.0 V6 re-authentication / V8 in the browser: a sensitive operation asks for a fresh
    second factor and then continues with what was asked."""
    device = TOTPDeviceFactory(user=editor)
    agent = AgentFactory(organization=org, name="VAT adviser", status="active")
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent, activate=False)
    sign_in(context, live_server, editor)

    page.goto(f"/admin/agents/agent/{agent.pk}/overview/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Deprecate").click()
    expect(page.locator("h2#step-up-title")).to_contain_text("Deprecate agents: confirm it")
    code = page.get_by_label("Code")
    expect(code).to_be_focused()
    screenshot(page, "step-up-01-code-page")

    code.fill("000000" if totp_code(device) != "000000" else "111111")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(".errornote")).to_contain_text("wrong, expired or already used")
    assert Agent.objects.get(pk=agent.pk).status == "active"

    device.refresh_from_db()
    device.throttle_reset()
    page.get_by_label("Code").fill(totp_code(device))
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page).to_have_url(re.compile(rf"/admin/agents/agent/{agent.pk}/overview/$"))
    expect(page.locator(".messagelist").first).to_contain_text("is now deprecated")
    screenshot(page, "step-up-02-deprecated")
    assert Agent.objects.get(pk=agent.pk).status == "deprecated"
    assert AuditEvent.objects.filter(action="factor.step_up", after__operation="agent.deprecate").exists()
    assert watcher.take() == []
