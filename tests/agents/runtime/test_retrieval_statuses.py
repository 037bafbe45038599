"""Statuses that say what happened (issue 15, finding 4): a passage a retrieval guardrail drops or flags
is a ``dropped`` / ``flagged`` step of a run that goes on; ``blocked`` is kept for a guardrail that ended
the run. The trace (console and admin) shows them in their own colour and words."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from agents.console.trace import present_step, present_turn
from agents.runtime import execute
from tests.agents.runtime.conftest import guardrail
from tests.factories import ChunkFactory, DocumentFactory, release_now

pytestmark = pytest.mark.django_db

QUESTION = "What do the VAT notes on the Falcon and Heron invoices say?"


@pytest.fixture
def agent(make_agent, vat_kb):
    """An agent whose retrieval guardrails drop the "Falcon" note and flag the "Heron" one."""
    agent = make_agent(guards=None, tools=())
    guardrail(agent, 0, name="Falcon deny list", kind="keywords", action="block",
              applies_to_input=False, applies_to_retrieval=True, config={"keywords": ["falcon"]})  # fmt: skip
    guardrail(agent, 1, name="Heron watch", kind="keywords", action="warn",
              applies_to_input=False, applies_to_retrieval=True, config={"keywords": ["heron"]})  # fmt: skip
    memo = DocumentFactory(knowledge_base=vat_kb, title="Falcon memo")
    ChunkFactory(
        document=memo, ordinal=0, text="VAT note on the Falcon invoices: project falcon is confidential."
    )
    note = DocumentFactory(knowledge_base=vat_kb, title="Heron note")
    ChunkFactory(
        document=note, ordinal=0, text="VAT note on the Heron invoices: the heron account pays late."
    )
    return agent


def test_dropped_and_flagged_passages_are_their_own_statuses_and_the_run_completes(agent):
    release_now(agent)
    execution = execute(agent, QUESTION, source="api")
    assert execution.status == "completed", execution.error
    retrieval = execution.steps.get(kind="retrieval")
    assert retrieval.status == "dropped"
    assert [p["document_title"] for p in retrieval.output["dropped"]] == ["Falcon memo"]
    assert [p["document_title"] for p in retrieval.output["passages"] if p["flagged"]] == ["Heron note"]
    guards = {s.name: s.status for s in execution.steps.filter(kind="guardrail")}
    assert guards["Falcon deny list (retrieval)"] == "dropped"
    assert guards["Heron watch (retrieval)"] == "flagged"
    assert not execution.steps.filter(status="blocked").exists()
    messages = str(execution.steps.get(kind="model_call").input["messages"])
    assert "confidential" not in messages and "pays late" in messages


def test_a_search_that_only_flagged_passages_is_flagged(agent):
    agent.guardrail_assignments.filter(guardrail__name="Falcon deny list").delete()
    release_now(agent)
    execution = execute(agent, QUESTION, source="api")
    assert execution.status == "completed", execution.error
    statuses = {s.name: s.status for s in execution.steps.all()}
    assert statuses["Knowledge search"] == "flagged"
    assert statuses["Heron watch (retrieval)"] == "flagged"


def test_a_guardrail_that_ends_the_run_is_still_blocked(agent):
    guardrail(agent, 2, name="Input deny list", kind="keywords", action="block",
              applies_to_input=True, config={"keywords": ["heron"]})  # fmt: skip
    release_now(agent)
    execution = execute(agent, QUESTION, source="api")
    assert execution.status == "blocked"
    [blocked] = execution.steps.filter(status="blocked")
    assert blocked.name.startswith("Input deny list") and blocked.input["stage"] == "input"
    assert not execution.steps.filter(status__in=["dropped", "flagged"]).exists()


def test_the_console_trace_shows_dropped_and_flagged_in_their_own_colour(agent):
    release_now(agent)
    execution = execute(agent, QUESTION, source="api")
    turn = present_turn(execution)
    assert turn["blocked_by"] is None
    steps = {s["name"]: s for s in turn["steps"]}
    search = steps["Knowledge search"]
    assert (search["status"], search["status_label"], search["dropped"]) == (
        "dropped",
        "Dropped",
        ["Falcon memo"],
    )
    falcon = steps["Falcon deny list (retrieval)"]
    assert falcon["status_label"] == "Dropped"
    assert falcon["verdicts"][0]["message"] == "dropped 1 passage(s) from Falcon memo"
    assert (
        steps["Heron watch (retrieval)"]["verdicts"][0]["message"] == "flagged 1 passage(s) from Heron note"
    )
    html = render_to_string("agents/console/_step.html", {"step": search})
    assert "console-step--dropped" in html and "console-badge--dropped" in html
    assert "1 passage withheld from the model by a guardrail: Falcon memo" in html
    assert 'console-badge console-badge--flagged">Flagged' in html and "console-badge--blocked" not in html
    heron = render_to_string("agents/console/_step.html", {"step": steps["Heron watch (retrieval)"]})
    assert "console-badge--flagged" in heron and ">Flagged<" in heron
    # A step as the stream sends it (a dict) shows the same.
    assert present_step({"kind": "retrieval", "name": "Knowledge search", "status": "dropped",
                         "output": {"dropped": [{"document_title": "Falcon memo"}]}})["dropped"] == ["Falcon memo"]  # fmt: skip


def test_the_admin_trace_labels_them(agent, staff_client):
    release_now(agent)
    execution = execute(agent, QUESTION, source="api")
    html = staff_client.get(reverse("admin:agents_execution_change", args=[execution.pk])).content.decode()
    assert 'class="pg-step-dropped"' in html and 'class="pg-step-flagged"' in html
    assert 'pg-badge pg-badge-dropped">Dropped' in html and 'pg-badge pg-badge-flagged">Flagged' in html
    assert "pg-badge-blocked" not in html
    assert "1 passage withheld from the model; 1 passage flagged (tools withheld); the run went on." in html
