"""Persona versions in a real browser: each version's state badge, the editor saying before saving
whether it changes the version in place or creates version N+1, the in-place edit's trace in the list,
and the side-by-side diff wrapping long prompts in both columns (nothing clipped horizontally)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from personas.services import persona_create
from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, ExecutionFactory, release_now

pytestmark = pytest.mark.e2e

SENTENCE = (
    "You are the firm's VAT specialist for cross-border supplies of services within the European Union; "
    "cite the firm's guidance with document and page for every statement you make. "
)
UNBROKEN = "https://guidance.example/vat/" + "0123456789abcdef" * 14  # no space: only overflow-wrap breaks it


def _columns_fit(page) -> list[dict]:
    """The geometry of every text column of the diff that does not fit its cell, its table, its panel
    or the page (empty when everything wraps)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('#persona-diff td.pg-old, #persona-diff td.pg-new')]
            .map(td => ({cls: td.className, scroll: td.scrollWidth, client: td.clientWidth,
                         right: td.getBoundingClientRect().right,
                         table: td.closest('table').getBoundingClientRect().right,
                         panel: td.closest('section').getBoundingClientRect().right,
                         page: document.documentElement.clientWidth,
                         pageScroll: document.documentElement.scrollWidth}))
            .filter(g => g.scroll > g.client || g.right > g.table + 0.5 || g.table > g.panel + 0.5
                         || g.panel > g.page || g.pageScroll > g.page)"""
    )


def test_persona_states_the_next_version_notice_the_edit_trace_and_the_wrapped_diff(
    signed_in_page, live_server, org, editor
):
    page = signed_in_page
    page.set_viewport_size({"width": 1100, "height": 900})
    agent = AgentFactory(organization=org, name="VAT adviser")
    v1 = persona_create(agent=agent, actor=editor, name="VAT specialist", system_prompt=SENTENCE * 6)
    release_now(agent)
    ExecutionFactory(agent=agent, persona=v1)
    persona_create(
        agent=agent,
        actor=editor,
        name="VAT specialist",
        system_prompt=SENTENCE * 6 + "Answer in plain English.",
        activate=True,
    )

    page.goto(live_server.url + reverse("admin:agents_agent_personas", args=[agent.pk]))
    row1, row2 = page.locator('tr[data-version="1"]'), page.locator('tr[data-version="2"]')
    expect(row1.locator(".pg-badge", has_text="Used — locked")).to_be_visible()
    expect(row1.locator(".pg-badge", has_text="Live — in release 1")).to_be_visible()
    expect(row1).to_contain_text("Used by 1 run and in release 1")
    expect(row2.locator(".pg-badge", has_text="Draft — editable")).to_be_visible()
    expect(row2.locator(".pg-badge", has_text="Current")).to_be_visible()

    # A locked version: the button and the editor say that saving makes version 3.
    row1.get_by_role("link", name="New version from v1").click()
    expect(page.locator("#save-outcome")).to_have_text(
        "Saving creates version 3; version 1 stays as it is (used by 1 run and in release 1)."
    )
    expect(page.get_by_role("button", name="Save as v3")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()

    # A draft: changed in place, and the list then says who edited it and when.
    row2.get_by_role("link", name="Edit", exact=True).click()
    expect(page.locator("#save-outcome")).to_contain_text("Saving changes version 2 in place")
    page.get_by_label("System prompt").fill(
        SENTENCE * 6 + "Answer in clear, plain English and flag every assumption. Sources: " + UNBROKEN
    )
    page.get_by_role("button", name="Save changes to v2").click()
    expect(page.locator(".messagelist")).to_contain_text("Version 2 was changed in place")
    expect(page.locator('tr[data-version="2"] .pg-persona-edited')).to_have_text(
        re.compile(r"edited \d+ \w+ \d{4} \d\d:\d\d by mira")
    )
    assert agent.personas.count() == 2

    # The diff, side by side: both columns wrap, the unbroken link too, nothing is clipped.
    page.get_by_label("From version").select_option("1")
    page.get_by_label("To version").select_option("2")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#persona-diff h3").first).to_have_text("v1 → v2")
    new_text = page.locator("#persona-diff td.pg-new.pg-add").first
    expect(new_text).to_contain_text("flag every assumption")
    problems = _columns_fit(page)
    assert not problems, json.dumps(problems)
    assert UNBROKEN in new_text.inner_text().replace("\n", "")  # wrapped, not cut
    screenshot(page, "persona-versions")
