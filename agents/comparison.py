"""Two executions side by side: written once, shown by the replay page (original against replay) and
the console's compare (one question against two releases).

``compare`` turns two executions into rows — release, status, answer, citations, tool calls, guardrail
verdicts, tokens, cost, latency, provider and model — each with both sides' values and whether they
differ; ``agents/partials/comparison.html`` renders them as two columns that wrap (nothing clipped).
Each side is shown as its viewer may see it (``agents.privacy``): ``visible`` per side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from agents.evidence import guardrail_verdicts, tool_calls
from agents.models import Execution
from agents.privacy import shown_data, shown_text
from prisma_glow.display import format_duration_ms, format_money


@dataclass
class Side:
    """One column's heading, its execution and its link."""

    title: str
    execution: Execution
    url: str = ""


@dataclass
class Row:
    """One compared aspect: its label, each side's lines, and whether they differ."""

    label: str
    left: list[str] = field(default_factory=list)
    right: list[str] = field(default_factory=list)
    #: Long texts (the answer) keep their line breaks.
    prose: bool = False

    @property
    def differs(self) -> bool:
        return self.left != self.right


def _release(execution: Execution) -> list[str]:
    if execution.release_id is None:
        return ["draft (the live configuration)"]
    return [f"release {execution.release.number} · {execution.release.content_hash}"]


def _citations(execution: Execution, visible: bool) -> list[str]:
    citations = shown_data(execution, execution.citations or [], visible=visible)
    return [
        f"[{c.get('n', '?')}] {c.get('citation') or c.get('document_title') or 'passage'}"
        for c in citations
        if isinstance(c, dict)
    ]


def _tool_calls(execution: Execution, steps, visible: bool) -> list[str]:
    def shown(value):
        return shown_data(execution, value, visible=visible)

    return [
        f"{call['name']}({_compact(call['arguments'])}) → {call['status']}: {_compact(call['result'])}"
        for call in tool_calls(steps, shown=shown)
    ]


def _verdicts(execution: Execution, steps, visible: bool) -> list[str]:
    def shown(value):
        return shown_data(execution, value, visible=visible)

    lines = []
    for verdict in guardrail_verdicts(steps, shown=shown):
        said = verdict["verdict"].get("message", "") if isinstance(verdict["verdict"], dict) else ""
        lines.append(f"{verdict['name']}: {verdict['status']}{' — ' + said if said else ''}")
    return lines


def _compact(value) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 400 else text[:399] + "…"


def _dash(value, suffix: str = "") -> list[str]:
    return ["—"] if value is None or value == "" else [f"{value}{suffix}"]


def _rows(execution: Execution, visible: bool, currency: str = "") -> dict[str, tuple[list[str], bool]]:
    steps = list(execution.steps.all())
    answer = shown_text(execution, execution.output, visible=visible)
    error = shown_text(execution, execution.error, visible=visible)
    return {
        "Release": (_release(execution), False),
        "Status": ([execution.get_status_display() + (f": {error}" if error else "")], False),
        "Answer": ([answer] if answer else ["—"], True),
        "Citations": (_citations(execution, visible) or ["none"], False),
        "Tool calls": (_tool_calls(execution, steps, visible) or ["none"], False),
        "Guardrail verdicts": (_verdicts(execution, steps, visible) or ["none"], False),
        "Tokens in / out": ([f"{_dash(execution.tokens_in)[0]} / {_dash(execution.tokens_out)[0]}"], False),
        "Cost": ([format_money(execution.cost, currency)], False),
        "Latency": ([format_duration_ms(execution.latency_ms)], False),
        "Provider · model": ([f"{execution.provider_kind or '—'} · {execution.model or '—'}"], False),
    }


def compare(left: Side, right: Side, *, left_visible: bool, right_visible: bool, currency: str = "") -> dict:
    """The comparison of two executions (read with their steps, release and persona) as the template
    shows it: ``{"left": Side, "right": Side, "rows": [Row, …], "differences": n}``; costs in
    ``currency`` (the organisation's)."""
    mine = _rows(left.execution, left_visible, currency)
    theirs = _rows(right.execution, right_visible, currency)
    rows = [
        Row(label=label, left=values, right=theirs[label][0], prose=prose)
        for label, (values, prose) in mine.items()
    ]
    return {
        "left": left,
        "right": right,
        "rows": rows,
        "differences": sum(1 for row in rows if row.differs),
        "masked": not (left_visible and right_visible),
    }
