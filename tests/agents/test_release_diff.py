"""``agents.release_diff``: the one comparison of two releases (API and staff UI), and the word-by-word
side-by-side layout of a text."""

from __future__ import annotations

from agents.release_diff import release_diff, text_rows


def _snapshot(**overrides):
    snapshot = {
        "format": 1,
        "agent": {"id": 1, "name": "VAT adviser", "max_tool_rounds": 4, "timeout_seconds": 120},
        "persona": {"id": 10, "version": 1, "name": "VAT", "system_prompt": "You are a VAT adviser."},
        "provider": None,
        "model": "",
        "tools": [
            {"order": 1, "settings": {"timeout": 30}, "tool": {"id": 7, "name": "VIES", "method": "GET"}}
        ],
        "knowledge": [
            {"order": 1, "top_k": 5, "min_score": 0.0, "knowledge_base": {"id": 3, "name": "EU VAT guidance"}}
        ],
        "guardrails": [{"order": 1, "guardrail": {"id": 9, "name": "PII", "config": {"action": "mask"}}}],
        "examples": [{"id": 5, "input": "Q?", "output": "A."}],
    }
    snapshot.update(overrides)
    return snapshot


def test_identical_snapshots_have_no_changes():
    diff = release_diff(_snapshot(), _snapshot())
    assert diff["identical"] is True
    assert diff["persona"] == [] and diff["tools"] == {"added": [], "removed": [], "changed": []}


def test_each_kind_of_change_is_named_with_its_field():
    before = _snapshot()
    after = _snapshot(
        agent={"id": 1, "name": "VAT adviser", "max_tool_rounds": 2, "timeout_seconds": 120},
        persona={"id": 11, "version": 2, "name": "VAT", "system_prompt": "You are a senior VAT adviser."},
        provider={"id": 2, "name": "Azure", "kind": "openai_compatible", "default_model": "gpt-4o-mini"},
        model="gpt-4o-mini",
        tools=[
            {"order": 2, "settings": {"timeout": 10}, "tool": {"id": 7, "name": "VIES", "method": "POST"}},
            {"order": 1, "settings": {}, "tool": {"id": 8, "name": "FX", "method": "GET"}},
        ],
        knowledge=[],
        guardrails=[{"order": 1, "guardrail": {"id": 9, "name": "PII", "config": {"action": "block"}}}],
        examples=[
            {"id": 5, "input": "Q?", "output": "A better answer."},
            {"id": 6, "input": "New?", "output": "Yes."},
        ],
    )
    diff = release_diff(before, after)
    assert diff["identical"] is False
    assert diff["agent"] == [{"field": "max_tool_rounds", "before": 4, "after": 2}]
    assert {c["field"] for c in diff["persona"]} == {"version", "system_prompt"}  # ids are not fields
    assert diff["provider"]["before"] is None and diff["provider"]["after"]["name"] == "Azure"
    assert diff["model"] == {"before": "", "after": "gpt-4o-mini"}
    (vies,) = diff["tools"]["changed"]
    assert vies["changes"] == [
        {"field": "order", "before": 1, "after": 2},
        {"field": "settings.timeout", "before": 30, "after": 10},
        {"field": "tool.method", "before": "GET", "after": "POST"},
    ]
    assert [t["name"] for t in diff["tools"]["added"]] == ["FX"]
    assert [k["name"] for k in diff["knowledge"]["removed"]] == ["EU VAT guidance"]
    assert diff["guardrails"]["changed"][0]["changes"] == [
        {"field": "guardrail.config.action", "before": "mask", "after": "block"}
    ]
    assert diff["examples"]["changed"] == [
        {"id": 5, "changes": [{"field": "output", "before": "A.", "after": "A better answer."}]}
    ]
    assert diff["examples"]["added"] == [{"id": 6, "input": "New?", "output": "Yes."}]


def test_text_rows_mark_changed_words_only():
    """Word-level: only the inserted and replaced words are marked; spaces between two changed words
    join them into one mark."""
    (row,) = text_rows("Answer in plain English.", "Answer in clear, plain English and cite.")
    assert row["changed"] is True
    assert row["old"] == [("Answer in plain English.", False)]
    marked = [text for text, changed in row["new"] if changed]
    assert marked == ["clear, ", " and cite"]
    assert "".join(text for text, _ in row["new"]) == "Answer in clear, plain English and cite."


def test_text_rows_break_at_shared_line_breaks_so_columns_stay_aligned():
    before = "First rule.\nSecond rule.\nThird rule."
    after = "First rule.\nSecond rule, amended.\nThird rule."
    rows = text_rows(before, after)
    assert [("".join(t for t, _ in r["old"]), "".join(t for t, _ in r["new"])) for r in rows] == [
        ("First rule.", "First rule."),
        ("Second rule.", "Second rule, amended."),
        ("Third rule.", "Third rule."),
    ]
    assert [r["changed"] for r in rows] == [False, True, False]


def test_text_rows_of_a_long_single_line_keep_every_word():
    """A long prompt without line breaks is one row, nothing dropped on either side."""
    words = [f"word{n}" for n in range(400)]
    before = " ".join(words)
    after = " ".join(words[:200] + ["INSERTED"] + words[200:])
    (row,) = text_rows(before, after)
    assert "".join(t for t, _ in row["old"]) == before
    assert "".join(t for t, _ in row["new"]) == after
    assert [t for t, changed in row["new"] if changed] == ["INSERTED "]


def test_text_rows_empty_sides():
    assert text_rows("", "") == []
    (row,) = text_rows("", "New text.")
    assert row["old"] == [] and row["new"] == [("New text.", True)]
