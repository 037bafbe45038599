"""Helpers of the agents' staff pages: the agent page's p95, the persona diff."""

from __future__ import annotations

import pytest

from tests.factories import AgentFactory, ExecutionFactory
from tests.support.admin import login


@pytest.mark.django_db
def test_the_agent_page_p95_is_the_dashboards(org, owner):
    """percentile_cont, like the dashboard: 10, 20, 30, 40, 1000 ms → 808 ms (NULLs ignored)."""
    agent = AgentFactory(organization=org)
    for latency in [10, 20, 30, 40, 1000]:
        ExecutionFactory(agent=agent, latency_ms=latency)
    ExecutionFactory(agent=agent, latency_ms=None)
    response = login(owner).get(f"/admin/agents/agent/{agent.pk}/overview/")
    assert response.context["metrics"]["p95_latency"] == pytest.approx(808)
    assert "808 ms" in response.content.decode()


def test_side_by_side_pairs_lines_and_folds_long_unchanged_runs():
    from agents.admin.pages import side_by_side

    before = "\n".join(["You are a VAT specialist."] + [f"Rule {i}." for i in range(1, 9)] + ["Be brief."])
    after = "\n".join(
        ["You are a senior VAT specialist."] + [f"Rule {i}." for i in range(1, 9)] + ["Cite sources."]
    )
    rows = side_by_side(before, after)
    first = {k: v for k, v in rows[0].items() if not k.endswith("_parts")}
    assert first == {"kind": "change", "old_no": 1, "old": "You are a VAT specialist.", "new_no": 1,
                     "new": "You are a senior VAT specialist."}  # fmt: skip
    # Within a changed line, the words that changed are marked.
    assert "".join(text for text, _ in rows[0]["old_parts"]) == "You are a VAT specialist."
    assert not any(changed for _, changed in rows[0]["old_parts"])
    assert [part for part in rows[0]["new_parts"] if part[1]] == [("senior ", True)]
    assert [r["kind"] for r in rows] == ["change", "same", "same", "fold", "same", "same", "change"]
    assert rows[3] == {"kind": "fold", "count": 4}
    assert rows[-1]["old_no"] == rows[-1]["new_no"] == 10 and rows[-1]["new"] == "Cite sources."

    added = side_by_side("One.", "One.\nTwo.\nThree.")
    assert [(r["kind"], r["old_no"], r["new_no"], r["new"]) for r in added] == [
        ("same", 1, 1, "One."), ("add", None, 2, "Two."), ("add", None, 3, "Three."),
    ]  # fmt: skip
    removed = side_by_side("A\nB", "")
    assert [(r["kind"], r["old"], r["new_no"]) for r in removed] == [("del", "A", None), ("del", "B", None)]
    assert side_by_side("", "") == [] and side_by_side("0.2", "0.7")[0]["kind"] == "change"
