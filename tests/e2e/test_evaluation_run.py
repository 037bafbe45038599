"""An evaluation run's page in a real browser: while the run is queued the progress part polls
(HTMX), then shows the results once the run is done, without reloading the page; a person then marks
a case fail and the mark is shown."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agents.services import release_create
from evaluations import services
from evaluations.models import CaseResult, EvalRun
from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, PersonaFactory

pytestmark = pytest.mark.e2e


def test_the_run_page_shows_progress_then_results_and_takes_a_mark(
    signed_in_page, live_server, org, editor, watcher
):
    page = signed_in_page
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True)
    release = release_create(agent=agent, actor=editor, notes="First")
    suite = services.suite_create(organization=org, actor=editor, agent=agent, name="Smoke")
    for name in ("Greets", "Answers"):
        services.case_create(
            suite=suite, actor=editor, name=name, input="Hello?", checks=[{"kind": "not_blocked"}]
        )
    # Queued, its task not run yet: the page must poll until the run is done.
    run = EvalRun.objects.create(organization=org, suite=suite, release=release, total=2, requested_by=editor)

    page.goto(live_server.url + reverse("admin:evaluations_evalrun_change", args=[run.pk]))
    expect(page.locator("#run-status")).to_have_text("Queued")
    expect(page.locator("#run-progress")).to_contain_text("0 of 2 cases")
    page_id = page.evaluate("() => (window.__pgMarker = Math.random())")

    services.run_execute(run_id=run.pk)
    expect(page.locator("#run-status")).to_have_text("Passed", timeout=30_000)
    expect(page.locator("#run-totals")).to_contain_text("100 %")
    expect(page.locator("#run-results tbody tr")).to_have_count(2)
    assert page.evaluate("() => window.__pgMarker") == page_id  # swapped in place, not reloaded
    assert page.locator("#run-live[hx-trigger]").count() == 0  # static once done
    screenshot(page, "evaluation-run-done")

    first = CaseResult.objects.filter(run=run).order_by("id").first()
    row = page.locator(f"#result-{first.pk}")
    row.get_by_role("button", name="Fail").click()
    expect(page.locator(f"#result-{first.pk} .pg-mark")).to_contain_text("fail")
    first.refresh_from_db()
    assert first.human_passed is False and first.marked_by == editor
    assert watcher.take() == []
