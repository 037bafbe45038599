"""JSON for the run: the values a step records (``json_safe``), and the JSON form of an execution and
its steps (the API's answer, the stream's last event and the command line's source). Never contains
PII originals beyond what the requester sent and sees."""

from __future__ import annotations

import json

from agents.models import ExecutionStatus, ToolApprovalStatus


def without_nul(value):
    """``value`` (text, or JSON data) with every NUL character, which PostgreSQL refuses in text and
    JSON, replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value


def json_safe(value):
    """``value`` as data a JSON column stores and gives back unchanged: other types as text, NaN and
    infinities (which Python's parser accepts from a tool's peer but JSON, and so the database, does
    not) as the text "NaN", "Infinity" and "-Infinity"."""
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except ValueError:  # NaN or an infinity in there
        return json.loads(json.dumps(value, default=str), parse_constant=str)


def _iso(value):
    return value.isoformat() if value is not None else None


def step_to_dict(step) -> dict:
    """One ``ExecutionStep`` as JSON-safe data."""
    return {
        "ordinal": step.ordinal,
        "kind": step.kind,
        "name": step.name,
        "status": step.status,
        "duration_ms": round(step.duration_ms, 3),
        "started_at": _iso(step.started_at),
        "input": step.input,
        "output": step.output,
    }


def execution_to_dict(execution, steps=None) -> dict:
    """``execution`` with its ``steps`` (given, or ``execution.steps.all()``: those the run holds, see
    ``agents.runtime.record``, else read from the database): the members of the API's execution
    detail (``agents.api.serializers.ExecutionDetailSerializer``), so that the console's ``execution``
    event and the API's carry the same ones (tests/agents/console/test_console_stream.py)."""
    if steps is None:
        steps = execution.steps.all()
    return {
        "id": execution.pk,
        "agent": execution.agent_id,
        "agent_name": execution.agent.name,
        "persona": execution.persona_id,
        "persona_version": getattr(execution.persona, "version", None) if execution.persona_id else None,
        "release": execution.release.number if execution.release_id else None,
        "release_hash": execution.release.content_hash if execution.release_id else None,
        "as_of": execution.as_of.isoformat() if execution.as_of else None,
        "provider": execution.provider_id,
        "provider_kind": execution.provider_kind,
        "model": execution.model,
        "status": execution.status,
        "input": execution.input,
        "output": execution.output,
        "error": execution.error,
        "citations": execution.citations,
        "tokens_in": execution.tokens_in,
        "tokens_out": execution.tokens_out,
        "cost": str(execution.cost) if execution.cost is not None else None,
        "latency_ms": execution.latency_ms,
        "source": execution.source,
        "is_test": execution.is_test,
        "actor_user": execution.actor_user_id,
        "actor_api_key": execution.actor_api_key_id,
        "conversation": execution.conversation_id,
        "turn": execution.turn,
        "replay_of": execution.replay_of_id,
        "created_at": _iso(execution.created_at),
        "finished_at": _iso(execution.finished_at),
        "steps": [step_to_dict(step) for step in steps],
        "tool_approval": pending_approval(execution),
    }


def pending_approval(execution) -> dict | None:
    """The tool call a run ``awaiting_approval`` waits on (``agents.runtime.approvals``), as the
    execution's ``tool_approval`` shows it; None for any other run. The run that just paused holds
    its request (``record.record_pause``): no query then."""
    if execution.status != ExecutionStatus.AWAITING_APPROVAL:
        return None
    approval = getattr(execution, "pending_tool_approval", None)
    if approval is None:
        approval = execution.tool_approvals.filter(status=ToolApprovalStatus.PENDING).first()
    if approval is None:
        return None
    return {
        "id": approval.pk,
        "tool": approval.tool_id,
        "tool_name": approval.tool_name,
        "arguments": approval.arguments,
        "expires_at": _iso(approval.expires_at),
    }
