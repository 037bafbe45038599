"""The audit explorer in a real browser (issue 18, journey 6): the audit partner filters the log by
agent, opens the persona change, and reads its before and after side by side, the long prompt wrapped
rather than clipped."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from agents import services as agent_services
from personas import services as persona_services
from prisma_glow.audit.services import audit_record
from tests.e2e.conftest import screenshot, sign_in
from tests.factories import AgentFactory, ExecutionFactory

pytestmark = pytest.mark.e2e

LONG_LINE = "Always cite the article of the VAT directive and the member state's transposition " * 6
UNBROKEN = "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32006L0112&" + "x" * 160


def test_filter_by_agent_and_read_the_wrapped_diff(context, page, live_server, org, editor, watcher):
    adviser = AgentFactory(organization=org, name="VAT adviser")
    other = AgentFactory(organization=org, name="Payroll helper")
    persona = persona_services.persona_create(
        agent=adviser, actor=editor, name="VAT specialist", system_prompt="You answer VAT questions."
    )
    persona_services.persona_update(
        persona=persona, actor=editor, system_prompt=f"You answer VAT questions.\n{LONG_LINE}\n{UNBROKEN}"
    )
    agent_services.agent_update(agent=other, actor=editor, description="Payslips")
    audit_record(organization=org, action="agent.execute", actor=editor, obj=ExecutionFactory(agent=adviser))
    sign_in(context, live_server, editor)

    page.goto("/admin/audit/auditevent/")
    events = page.locator("#audit-events")
    expect(events).to_contain_text("Payroll helper")
    expect(events).not_to_contain_text("Agent: run")  # runs hidden unless asked for

    page.get_by_label(re.compile(r"^Agent:?$")).select_option(label="VAT adviser")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"/admin/audit/auditevent/\?.*\bagent={adviser.pk}&"))
    expect(events).not_to_contain_text("Payroll helper")
    expect(events).to_contain_text("Persona: update")
    expect(events.locator("tbody tr")).to_have_count(2)  # the creation and the edit, no run

    page.get_by_label(re.compile(r"^Include runs:?$")).check()
    page.get_by_role("button", name="Filter").click()
    expect(events).to_contain_text("Agent: run")
    screenshot(page, "audit-explorer-list")

    events.locator("tr", has_text="Persona: update").get_by_role("link").click()
    diff = page.locator("#audit-diff")
    prompt = diff.locator("tr", has=page.get_by_role("rowheader", name="System prompt"))
    expect(prompt).to_contain_text("VAT directive")
    expect(diff.get_by_role("rowheader", name="Agent")).to_be_visible()
    expect(diff.locator("tr", has_text="VAT adviser (#")).to_have_count(1)  # a name, not agent_id: 7
    after = prompt.locator("td").nth(1)
    sizes = after.evaluate(
        "td => ({scroll: td.scrollWidth, client: td.clientWidth, height: td.clientHeight})"
    )
    assert sizes["scroll"] <= sizes["client"], sizes  # nothing clipped or scrolled sideways
    line_height = after.locator(".pg-audit-line").first.evaluate("d => d.getBoundingClientRect().height")
    assert sizes["height"] > 4 * line_height, sizes  # the long lines wrapped onto several
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    screenshot(page, "audit-explorer-diff")
    assert not watcher.take()
