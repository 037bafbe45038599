"""The diff of two releases in a real browser: a long prompt diffed word by word, side by side, both
columns wrapping inside the page (nothing clipped horizontally), the changed words marked."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agents.services import release_create
from personas.services import persona_create
from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, PersonaFactory

pytestmark = pytest.mark.e2e

SENTENCE = (
    "You are the firm's VAT specialist for cross-border supplies of services within the European Union; "
    "cite the firm's guidance with document and page for every statement you make. "
)
UNBROKEN = "sha256:" + "0123456789abcdef" * 16  # no space, no hyphen: only overflow-wrap breaks it


def _long_prompt(extra: str) -> str:
    return SENTENCE * 12 + extra + " " + UNBROKEN + " " + SENTENCE * 4


def test_release_diff_wraps_long_prompts_and_marks_changed_words(signed_in_page, live_server, org, editor):
    page = signed_in_page
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True, system_prompt=_long_prompt("Answer in plain English."))
    release_create(agent=agent, actor=editor, notes="First")
    persona_create(
        agent=agent,
        actor=editor,
        name="Senior VAT specialist",
        system_prompt=_long_prompt("Answer in clear, plain English and flag every assumption."),
        activate=True,
    )
    release_create(agent=agent, actor=editor, notes="Clearer wording")

    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(live_server.url + reverse("admin:agents_agent_releases", args=[agent.pk]))
    page.get_by_label("From release").select_option("1")
    page.get_by_label("To release").select_option("2")
    page.get_by_role("button", name="Compare").click()
    table = page.locator('table.pg-diff-words[data-field="system_prompt"]')
    expect(table).to_be_visible()

    marks = table.locator("td.pg-new ins.pg-diff-mark")
    expect(marks.first).to_be_visible()
    marked = [text.strip() for text in marks.all_inner_texts()]
    assert "clear," in marked and "and flag every assumption" in marked, marked
    assert [t.strip() for t in table.locator("td.pg-old del.pg-diff-mark").all_inner_texts()] == []

    right = table.locator("td.pg-new").first
    geometry = right.evaluate(
        """td => ({scroll: td.scrollWidth, client: td.clientWidth, right: td.getBoundingClientRect().right,
                   table: td.closest('table').getBoundingClientRect().right,
                   panel: td.closest('section').getBoundingClientRect().right,
                   page: document.documentElement.clientWidth,
                   pageScroll: document.documentElement.scrollWidth,
                   text: td.innerText})"""
    )
    assert geometry["scroll"] <= geometry["client"], geometry  # nothing clipped in the column
    # The column ends inside its table, the table inside its panel (which would clip it), the panel
    # inside the page.
    assert geometry["right"] <= geometry["table"] <= geometry["panel"] <= geometry["page"], geometry
    assert geometry["pageScroll"] <= geometry["page"], geometry  # no horizontal scrolling either
    assert UNBROKEN in geometry["text"].replace("\n", "")  # wrapped, not cut
    assert "flag every assumption" in geometry["text"]
    screenshot(page, "release-diff")
