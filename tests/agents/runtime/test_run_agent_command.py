"""``manage.py run_agent``: the answer, citations and a trace summary on the command line."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import Execution

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("run_agent", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_answer_citations_and_trace(vat_agent, org):
    out, _ = run(f"{org.slug}/{vat_agent.slug}", "What is the VAT on €1,000 at 19%?")
    assert "€190.00" in out
    assert "tool_call" in out and "VAT calculator" in out
    assert "Trace:" in out and "completed" in out
    execution = Execution.objects.get()
    assert execution.source == "cli" and execution.actor_user is None


def test_citations_and_streaming(vat_agent, org):
    out, _ = run(
        f"{org.slug}/{vat_agent.slug}", "Who accounts for the VAT on cross-border B2B services?", "--stream"
    )
    assert "Citations:\n  [1] VAT manual, p. 12, § Reverse charge" in out


def test_json_output(vat_agent, org):
    out, _ = run(f"{org.slug}/{vat_agent.slug}", "What is the VAT on €1,000 at 19%?", "--json")
    data = json.loads(out)
    assert data["status"] == "completed" and data["steps"]


def test_draft_needs_test_flag_and_unknown_agents_are_errors(make_agent, org):
    agent = make_agent(status="draft")
    with pytest.raises(CommandError, match="draft"):
        run(f"{org.slug}/{agent.slug}", "Hello?")
    out, _ = run(f"{org.slug}/{agent.slug}", "Who accounts for the VAT?", "--test")
    assert "[test]" in out
    with pytest.raises(CommandError, match="No agent"):
        run(f"{org.slug}/missing", "Hello?")
    with pytest.raises(CommandError, match="ORGANISATION-SLUG/AGENT-SLUG"):
        run("just-a-slug", "Hello?")
