"""Browser test of the approval inbox: an editor requests the activation of a release on the agent's
page; the owner opens the inbox (linked from the header and the dashboard), presses *Approve and
activate*, gives a code from her authenticator app on the step-up page, and the release goes live."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from agents.models import ActivationRequest, Agent
from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import AgentFactory, PersonaFactory, TOTPDeviceFactory, release_now, totp_code


def test_request_on_the_agent_page_then_approve_in_the_inbox_with_a_code(
    browser, page, context, live_server, org, editor, owner, watcher
):
    """ASVS 5.0 V8 four eyes in the browser: one person requests, another approves with a fresh code."""
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True)
    release = release_now(agent, activate=False)

    # The editor asks for release 1 to go live.
    editor_ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    try:
        sign_in(editor_ctx, live_server, editor)
        editor_page = editor_ctx.new_page()
        editor_page.goto(f"/admin/agents/agent/{agent.pk}/overview/")
        # "Notes" of the request, not the release form's "Release notes" on the same page.
        editor_page.get_by_label("Notes", exact=True).fill("Suite run 41 passed.")
        editor_page.get_by_role("button", name="Request activation").click()
        expect(editor_page.locator(".messagelist").first).to_contain_text("Activation of release 1 requested")
        expect(editor_page.locator("#activation-pending")).to_contain_text("Suite run 41 passed.")
        screenshot(editor_page, "approvals-01-requested")
    finally:
        editor_ctx.close()
    assert Agent.objects.get(pk=agent.pk).status == "draft"

    # The owner approves it from the inbox, with a code.
    device = TOTPDeviceFactory(user=owner)
    sign_in(context, live_server, owner)
    page.goto("/admin/")
    expect(page.locator("#activation-panel")).to_contain_text("VAT adviser")
    page.get_by_role("link", name="Open the approval inbox").click()
    expect(page).to_have_url(re.compile(r"/admin/approvals/$"))
    row = page.locator("#activation-requests tr[data-request]")
    expect(row).to_contain_text(release.short_hash)
    expect(row).to_contain_text(editor.username)
    screenshot(page, "approvals-02-inbox")
    row.get_by_role("button", name="Approve and activate").click()
    expect(page.locator("h2#step-up-title")).to_contain_text("Approve the activation of a release")
    page.get_by_label("Code").fill(totp_code(device))
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page).to_have_url(re.compile(r"/admin/approvals/$"))
    expect(page.locator(".messagelist").first).to_contain_text("Release 1 of “VAT adviser” is now active")
    expect(page.locator("#activation-requests")).to_contain_text("No activation request is pending")
    screenshot(page, "approvals-03-approved")

    agent.refresh_from_db()
    assert agent.status == "active" and agent.active_release == release
    request = ActivationRequest.objects.get(agent=agent)
    assert request.requested_by == editor and request.decided_by == owner
    assert AuditEvent.objects.filter(action="factor.step_up", after__operation="release.approve").exists()
    assert watcher.take() == []
