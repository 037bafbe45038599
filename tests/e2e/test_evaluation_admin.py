"""Evaluations written from the staff UI in a real browser: on an agent without a suite, the "Save as
test case" panel of an execution leads to a new suite and back; the run is saved as a case, whose
checks are edited on its own page; then it is deleted after a confirmation."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agents.runtime import execute
from evaluations.models import Case, Suite
from tests.e2e.conftest import screenshot
from tests.factories import AgentFactory, PersonaFactory, release_now

pytestmark = pytest.mark.e2e


def test_a_suite_is_created_from_an_execution_and_its_case_edited_and_deleted(
    signed_in_page, live_server, org, editor, watcher
):
    page = signed_in_page
    agent = AgentFactory(organization=org, name="VAT adviser", status="active")
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent)
    execution = execute(agent, "What must every invoice show?", actor=editor, source="console")

    page.goto(live_server.url + reverse("admin:agents_execution_change", args=[execution.pk]))
    panel = page.locator("#save-as-case")
    expect(panel).to_contain_text("This agent has no evaluation suite yet")
    panel.get_by_role("link", name="Create a suite for this agent").click()
    expect(page.get_by_label("Agent")).to_have_value(str(agent.pk))
    page.get_by_label("Name").fill("Invoices")
    page.get_by_role("button", name="Create the suite").click()

    # Back on the execution, the new suite is the panel's choice.
    expect(page).to_have_url(
        live_server.url + reverse("admin:agents_execution_change", args=[execution.pk]) + "#save-as-case"
    )
    expect(page.locator("#save-as-case-suite")).to_contain_text("Invoices")
    page.locator("#save-as-case").get_by_role("button", name="Save as test case").click()
    suite = Suite.objects.get(agent=agent)
    case = Case.objects.get(suite=suite)
    row = page.locator(f"#case-{case.pk}")
    expect(row).to_contain_text("What must every invoice show?")

    row.get_by_role("link", name="Edit").click()
    checks = page.get_by_label("Checks")
    expect(checks).to_have_value(json.dumps(case.checks, indent=2))
    checks.fill('[{"kind": "contains", "text": "invoice"}, {"kind": "latency_under", "ms": 5000}]')
    page.get_by_role("button", name="Save the case").click()
    expect(page.locator(f"#case-{case.pk}")).to_contain_text("latency_under")
    screenshot(page, "evaluation-suite-case-edited")
    case.refresh_from_db()
    assert [check["kind"] for check in case.checks] == ["contains", "latency_under"]

    page.locator(f"#case-{case.pk}").get_by_role("link", name="Delete").click()
    expect(page.locator("#confirm-consequences")).to_contain_text("past runs keep its name")
    page.get_by_role("button", name="Delete the case").click()
    expect(page.locator("#cases-title")).to_be_visible()
    expect(page.locator(f"#case-{case.pk}")).to_have_count(0)
    assert not Case.objects.filter(pk=case.pk).exists()
    assert watcher.take() == []
