"""The agent wizard's step states in a real browser (issue 18, the tax manager): a step with errors is
not shown as done, fixing it makes it done, and "New agent" always starts at an empty Basics."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory

pytestmark = pytest.mark.e2e

BACKGROUND = "(el) => getComputedStyle(el).backgroundColor"


def field(scope, label: str):
    """A form field by its label as Django renders it ("Name:" or "Name")."""
    return scope.get_by_label(re.compile(rf"^{re.escape(label)}:?$"))


def test_duplicate_name_needs_attention_then_done_and_new_agent_starts_empty(signed_in_page, org, watcher):
    """Mira types a name the firm already uses: Basics shows the error and reads "needs attention"
    (not green); with a new name it is done (green); "New agent" from the registry then opens an
    empty Basics at step 1, nothing done, offering to continue the agent she started."""
    page = signed_in_page
    AgentFactory(organization=org, name="VAT adviser")
    page.goto("/admin/agents/agent/")
    page.get_by_role("link", name="New agent").click()

    steps = page.get_by_role("list", name="Steps of the new agent").get_by_role("listitem")
    basics = steps.first
    field(page, "Name").fill("VAT adviser")
    field(page, "Type").select_option("tax")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".pg-field-errors")).to_contain_text("already exists in this organisation")
    expect(basics).to_have_text(re.compile(r"1\. Basics\s*—\s*needs attention"))
    expect(basics).to_have_attribute("aria-current", "step")
    expect(basics).not_to_have_class(re.compile(r"pg-step-done"))
    screenshot(page, "wizard-basics-needs-attention")
    # The refused form answers 400 (as every form with errors), which Chromium logs; nothing else.
    assert [re.sub(r"localhost:\d+", "localhost", p) for p in watcher.take()] == [
        "console error: Failed to load resource: the server responded with a status of 400 (Bad Request) "
        "(http://localhost/admin/agents/agent/wizard/:0)"
    ]
    attention_colour = basics.evaluate(BACKGROUND)

    field(page, "Name").fill("VAT adviser (Mira)")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Persona")).to_be_visible()
    expect(basics).to_have_text(re.compile(r"1\. Basics\s*—\s*done"))
    expect(basics).to_have_class(re.compile(r"\bpg-step-done\b"))
    expect(basics).not_to_have_attribute("aria-current", "step")
    expect(steps.nth(1)).to_have_attribute("aria-current", "step")
    done_colour = basics.evaluate(BACKGROUND)
    assert done_colour != attention_colour  # green only when done
    field(page, "System prompt").fill("You are a senior VAT specialist. Cite the firm's guidance.")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Tools")).to_be_visible()

    page.goto("/admin/agents/agent/")
    page.get_by_role("link", name="New agent").click()
    expect(field(page, "Name")).to_have_value("")
    expect(basics).to_have_attribute("aria-current", "step")
    expect(page.locator(".pg-steps li.pg-step-done")).to_have_count(0)
    expect(steps).to_have_text([re.compile(rf"^\s*{n}\. \w+\s*—\s*not started\s*$") for n in range(1, 7)])
    continue_link = page.get_by_role("link", name="Continue the agent you started")
    expect(page.locator("#wizard-started")).to_contain_text("VAT adviser (Mira)")
    screenshot(page, "wizard-new-agent-starts-empty")

    # Continuing goes back to where she stopped, with what she typed.
    continue_link.click()
    expect(page.get_by_role("heading", name="Tools")).to_be_visible()
    expect(basics).to_have_text(re.compile(r"Basics\s*—\s*done"))
    assert watcher.take() == []
