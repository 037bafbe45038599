"""Approval of tool calls: what a run paused for a person keeps, and how it is read back.

When the model calls a tool that requires approval (``Tool.needs_approval``: the tool's setting, or
its assignment's), the pipeline (``pipeline._converse``) validates the call as it would before making
it, then pauses: the run's record so far, a ``ToolApproval`` and the state below are written in one
transaction (``record.record_pause``), the run holds nothing of its budgets, and its status is
``awaiting_approval``. A person with the editor role approves the call (its arguments edited or not,
validated against the tool's schema like the model's), or refuses it with a reason
(``agents.services.tool_approval_decide``); the decision enqueues ``agents.tasks.resume_tool_call``,
and a worker continues the run from the state (``pipeline.resume``) — in another process, after a
restart, whenever. A call nobody answers within ``PRISMA_GLOW_TOOL_APPROVAL_HOURS`` expires
(``agents.services.tool_approvals_expire``) and the run ends ``failed``.

The state is what the pipeline needs to go on and nothing it could read again: the messages exactly as
sent to the provider (already screened by the privacy boundary: placeholders, never the values they
stand for), the redaction mapping and the values the ``block`` / ``warn`` guardrails found, the tool
round, the answer so far, the tokens and cost so far, the time already spent, the passages (for the
output guardrails and the citations) and the calls of the round still to make. It is stored
encrypted (``ToolApproval.state``, like ``Execution.redactions``) and cleared when the run resumes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents.models import ExecutionStatus, ExecutionStep, StepKind, StepStatus, ToolApproval
from agents.runtime import record
from agents.runtime.providers.base import ToolCall
from knowledge.search import Passage

#: The version of the stored state's layout: a state of another version is not resumed.
STATE_VERSION = 1


def needs_approval(tool) -> bool:
    """Whether a call of ``tool`` (as the run loaded it: ``agents.selectors`` sets the assignment's
    setting on it) waits for a person."""
    return tool is not None and tool.needs_approval(getattr(tool, "assignment_requires_approval", None))


def expiry(now: dt.datetime | None = None) -> dt.datetime:
    """When a request made ``now`` expires (``PRISMA_GLOW_TOOL_APPROVAL_HOURS``)."""
    return (now or timezone.now()) + dt.timedelta(hours=settings.TOOL_APPROVAL_HOURS)


def expired_reason(tool_name: str) -> str:
    """The run's error when its call expired unanswered."""
    hours = settings.TOOL_APPROVAL_HOURS
    shown = f"{hours:g} h"
    return (
        f"the call of the tool '{tool_name}' waited for approval for more than {shown} "
        "(PRISMA_GLOW_TOOL_APPROVAL_HOURS) and expired unanswered"
    )


def refused_content(reason: str) -> str:
    """What the model reads as the result of a refused call."""
    return f"the person refused this call: {reason}"


def _passage(data: dict) -> Passage:
    fields = {f.name for f in dataclasses.fields(Passage)}
    values = {k: v for k, v in data.items() if k in fields}
    values["highlights"] = [tuple(pair) for pair in values.get("highlights") or []]
    return Passage(**values)


def dump_state(
    *,
    messages: list[dict],
    question: str,
    rounds: int,
    answer: str,
    pending: list[ToolCall],
    passages: list[Passage],
    redactions: dict[str, str],
    found: dict[str, str],
    masked: dict[str, str],
    tokens_in: int | None,
    tokens_out: int | None,
    cost: Decimal | None,
    elapsed_ms: int,
    next_ordinal: int,
    tools_withheld: str,
) -> str:
    """The paused run's state as JSON text (stored encrypted by ``ToolApproval.state``)."""
    return json.dumps(
        {
            "version": STATE_VERSION,
            "messages": messages,
            "question": question,
            "rounds": rounds,
            "answer": answer,
            "pending": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in pending],
            # The screening stored with a chunk served the retrieval stage, which is over.
            "passages": [
                {k: v for k, v in dataclasses.asdict(p).items() if k != "screening"} for p in passages
            ],
            "redactions": redactions,
            "found": found,
            "masked": masked,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost": None if cost is None else str(cost),
            "elapsed_ms": elapsed_ms,
            "next_ordinal": next_ordinal,
            "tools_withheld": tools_withheld,
        },
        ensure_ascii=False,
        default=str,
    )


def load_state(text: str) -> dict[str, Any]:
    """The stored state, with the calls and passages as the pipeline's objects. ``ValueError`` when
    it is missing or of another layout."""
    if not text:
        raise ValueError("the paused run's state is missing")
    state = json.loads(text)
    if state.get("version") != STATE_VERSION:
        raise ValueError("the paused run's state was written by another version of Prisma Glow")
    state["pending"] = [ToolCall(**call) for call in state["pending"]]
    state["passages"] = [_passage(p) for p in state["passages"]]
    state["cost"] = None if state["cost"] is None else Decimal(state["cost"])
    return state


def approval_to_dict(approval: ToolApproval) -> dict:
    """An approval as the stream's ``approval`` event and the API show it (docs/api.md): the
    arguments as the model wrote them (placeholders for client identifiers), never the state."""
    return {
        "id": approval.pk,
        "execution": approval.execution_id,
        "tool": approval.tool_id,
        "tool_name": approval.tool_name,
        "call_id": approval.call_id,
        "arguments": approval.arguments,
        "edited_arguments": approval.edited_arguments,
        "status": approval.status,
        "reason": approval.reason,
        "decided_by": approval.decided_by_id,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "created_at": approval.created_at.isoformat() if approval.created_at else None,
        "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
    }


def end_expired(approval: ToolApproval, *, now: dt.datetime) -> None:
    """The run of an approval that just expired ends ``failed`` with the reason, its trace one step
    longer (``Approval expired``), audited as any finished run (``record.record_finish``). Call in the
    transaction that marks the approval expired."""
    try:
        state = load_state(approval.state)
    except ValueError:
        state = {"redactions": {}, "found": {}, "next_ordinal": None}
    execution = approval.execution
    ordinal = state["next_ordinal"] or (execution.steps.count() + 1)
    step = ExecutionStep(
        execution=execution,
        ordinal=ordinal,
        kind=StepKind.APPROVAL,
        name=f"Approval expired: {approval.tool_name}"[:200],
        status=StepStatus.FAILED,
        started_at=now,
        input={"tool": approval.tool_name, "call_id": approval.call_id},
        output={"approval": approval.pk, "decision": approval.status, "reason": approval.reason},
    )
    execution.status, execution.output, execution.error = ExecutionStatus.FAILED, "", approval.reason
    execution.citations = []
    execution.finished_at = now
    record.record_finish(execution, [step], actor=None, redactions=state["redactions"], found=state["found"])
