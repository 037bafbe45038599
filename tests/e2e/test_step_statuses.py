"""Statuses that say what happened, in a real browser: the execution trace shows dropped and flagged
passages in their own colours (not the red of a blocked run), and the dashboard shows blocked runs and
dropped passages as two labelled figures."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, ExecutionFactory, ExecutionStepFactory

pytestmark = pytest.mark.e2e


def _background(page, selector: str) -> str:
    return page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")


def test_trace_and_dashboard_tell_dropped_flagged_and_blocked_apart(signed_in_page, live_server, org):
    page = signed_in_page
    agent = AgentFactory(organization=org, status="active", name="VAT adviser")
    run = ExecutionFactory(agent=agent, status="completed")
    ExecutionStepFactory(
        execution=run, ordinal=1, kind="retrieval", name="Knowledge search", status="dropped",
        output={"passages": [{"n": 1, "document_title": "Heron note", "flagged": True}],
                "dropped": [{"chunk_id": 1, "document_title": "Falcon memo"}, {"chunk_id": 2, "document_title": "Memo"}]},
    )  # fmt: skip
    ExecutionStepFactory(
        execution=run, ordinal=2, kind="guardrail", name="Deny list (retrieval)", status="dropped",
        input={"stage": "retrieval", "action": "block"}, output={"triggered": True, "passages": [{}, {}]},
    )  # fmt: skip
    ExecutionStepFactory(
        execution=run, ordinal=3, kind="guardrail", name="Watch list (retrieval)", status="flagged",
        input={"stage": "retrieval", "action": "warn"}, output={"triggered": True, "passages": [{}]},
    )  # fmt: skip
    blocked = ExecutionFactory(agent=agent, status="blocked")
    ExecutionStepFactory(
        execution=blocked, ordinal=1, kind="guardrail", name="Prompt injection", status="blocked"
    )

    page.goto(live_server.url + reverse("admin:agents_execution_change", args=[run.pk]))
    expect(page.locator(".pg-badge-dropped").first).to_have_text("Dropped")
    expect(page.locator(".pg-badge-flagged")).to_have_text("Flagged")
    expect(page.locator(".pg-step-note").first).to_contain_text("2 passages withheld from the model")
    dropped, flagged = _background(page, ".pg-badge-dropped"), _background(page, ".pg-badge-flagged")
    screenshot(page, "trace-dropped-flagged")
    page.goto(live_server.url + reverse("admin:agents_execution_change", args=[blocked.pk]))
    red = _background(page, ".pg-badge-blocked")
    assert len({dropped, flagged, red}) == 3, (dropped, flagged, red)

    page.goto(live_server.url + "/admin/")
    cards = page.locator(".pg-card")
    expect(cards.filter(has_text="Runs blocked by a guardrail").locator(".pg-card-value")).to_have_text("1")
    expect(cards.filter(has_text="Passages dropped (runs went on)").locator(".pg-card-value")).to_have_text(
        "2"
    )
    screenshot(page, "dashboard-blocked-and-dropped")
