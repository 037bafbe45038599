"""Turn executions and their steps into what the console shows (templates stay free of logic).

A step arrives either as an ``ExecutionStep`` row (a finished turn) or as the ``data`` of the
runtime's ``step`` event (while the answer streams); both give the same presentation.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.urls import NoReverseMatch, reverse

from agents.models import ExecutionStatus, ExecutionStep, StepKind, StepStatus

PASSAGE_PREVIEW_CHARS = 400


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _pretty(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


# --- steps ----------------------------------------------------------------------------------------


def _guardrail_results(data_out: dict, name: str, status: str = "") -> list[dict]:
    """The verdicts of a guardrail step: a list of check results (one per guardrail). A retrieval
    guardrail's hits are the passages it dropped (``status`` ``dropped``) or flagged."""
    results = data_out.get("results")
    if not isinstance(results, list):
        results = [data_out] if data_out else []
    shown = []
    for result in results:
        if not isinstance(result, dict):
            continue
        message = result.get("message", "")
        hits = result.get("passages") if "results" not in data_out else None
        if not message and isinstance(hits, list) and hits:
            documents = sorted({str(h.get("document", "")) for h in hits if isinstance(h, dict)})
            verb = "dropped" if status == StepStatus.DROPPED else "flagged"
            message = f"{verb} {len(hits)} passage(s) from {', '.join(documents)}"
        shown.append(
            {
                "name": result.get("name") or name,
                "kind": result.get("kind", ""),
                "action": result.get("action", ""),
                "triggered": bool(result.get("triggered")),
                "message": message,
                "duration_ms": _number(result.get("duration_ms")),
                "spans": len(result.get("spans") or []),
            }
        )
    return shown


def _heading(value: Any) -> str:
    if isinstance(value, list):
        return " › ".join(str(v) for v in value)
    return str(value or "")


def _passages(data_out: dict) -> list[dict]:
    passages = data_out.get("passages")
    if not isinstance(passages, list):
        return []
    shown = []
    for number, passage in enumerate(passages, start=1):
        if not isinstance(passage, dict):
            continue
        text = passage.get("text") or ""
        shown.append(
            {
                "number": passage.get("n") or number,
                "label": passage.get("citation") or passage.get("citation_label") or "",
                "title": passage.get("document_title") or "",
                "page": passage.get("page"),
                "heading": _heading(passage.get("heading_path")),
                "score": _number(passage.get("score")),
                "text": text[:PASSAGE_PREVIEW_CHARS] + ("…" if len(text) > PASSAGE_PREVIEW_CHARS else ""),
                "flagged": bool(passage.get("flagged") or passage.get("blocked")),
            }
        )
    return shown


def _dropped(data_out: dict) -> list[str]:
    """The titles of the passages a retrieval guardrail withheld from the model."""
    dropped = data_out.get("dropped")
    if not isinstance(dropped, list):
        return []
    return [str(p.get("document_title") or "a passage") for p in dropped if isinstance(p, dict)]


def present_step(step: ExecutionStep | dict) -> dict:
    """What one trace step shows: kind, name, status, timing and the kind's own details."""
    kind = _get(step, "kind", "") or ""
    name = _get(step, "name", "") or ""
    status = _get(step, "status", StepStatus.OK) or StepStatus.OK
    data_in, data_out = _as_dict(_get(step, "input", {})), _as_dict(_get(step, "output", {}))
    shown: dict[str, Any] = {
        "ordinal": _get(step, "ordinal"),
        "kind": kind,
        "kind_label": StepKind(kind).label if kind in StepKind.values else kind.replace("_", " ").title(),
        "name": name,
        "status": status,
        "status_label": StepStatus(status).label if status in StepStatus.values else status,
        "duration_ms": _number(_get(step, "duration_ms")),
        "raw_input": _pretty(data_in),
        "raw_output": _pretty(data_out),
    }
    if kind == StepKind.GUARDRAIL:
        shown["stage"] = data_in.get("stage") or data_out.get("stage") or ""
        shown["verdicts"] = _guardrail_results(data_out, name, status)
    elif kind == StepKind.RETRIEVAL:
        shown["query"] = data_in.get("query", "")
        shown["passages"] = _passages(data_out)
        shown["dropped"] = _dropped(data_out)
    elif kind == StepKind.MODEL_CALL:
        usage = _as_dict(data_out.get("usage"))
        shown["model"] = data_in.get("model") or data_out.get("model") or ""
        shown["tokens_in"] = data_out.get("tokens_in", usage.get("prompt_tokens"))
        shown["tokens_out"] = data_out.get("tokens_out", usage.get("completion_tokens"))
        shown["cost"] = _decimal(data_out.get("cost"))
    elif kind == StepKind.TOOL_CALL:
        shown["tool"] = data_in.get("tool") or name
        shown["arguments"] = (
            _pretty(data_in["arguments"]) if "arguments" in data_in else data_in.get("arguments_raw", "")
        )
        shown["result"] = _pretty(data_out.get("output"))
        shown["error"] = data_out.get("error") or ""
    return shown


# --- turns ----------------------------------------------------------------------------------------


def _blocked_by(steps: list[dict]) -> dict | None:
    for step in steps:
        if step["status"] == StepStatus.BLOCKED:
            triggered = [v for v in step.get("verdicts", []) if v["triggered"]]
            verdict = triggered[0] if triggered else {"name": step["name"], "message": ""}
            return {"name": verdict["name"], "message": verdict["message"], "stage": step.get("stage", "")}
    return None


def _trace_url(execution) -> str:
    try:
        return reverse("admin:agents_execution_change", args=[execution.pk])
    except NoReverseMatch:
        return ""


def present_turn(execution) -> dict:
    """One conversation turn: the question, the (restored) answer, citations, trace and feedback.

    The runtime stores the answer as the requester sees it: their own PII (which the provider saw
    as ``[IBAN_1]``…) already restored, while placeholders the output guardrails put over what the
    model produced stay. So nothing is restored here.
    """
    steps = [present_step(s) for s in execution.steps.all()]
    blocked_by = _blocked_by(steps) if execution.status == ExecutionStatus.BLOCKED else None
    # The call a paused run waits on (``_turn_queryset`` prefetches it): the turn offers the decision.
    approval = next(iter(getattr(execution, "pending_approvals", None) or []), None)
    return {
        "execution": execution,
        "id": execution.pk,
        "status": execution.status,
        "status_label": execution.get_status_display(),
        "is_test": execution.is_test,
        "persona": execution.persona,
        "input": execution.input,
        "answer": execution.output,
        "error": execution.error,
        "blocked_by": blocked_by,
        "citations": [c for c in execution.citations or [] if isinstance(c, dict)],
        "steps": steps,
        "model": execution.model,
        "provider_kind": execution.provider_kind,
        "tokens_in": execution.tokens_in,
        "tokens_out": execution.tokens_out,
        "cost": execution.cost,
        "latency_ms": execution.latency_ms,
        "created_at": execution.created_at,
        "feedback": list(execution.feedback.all()),
        "trace_url": _trace_url(execution),
        "approval": approval,
        "approval_arguments": json.dumps(approval.arguments, indent=2, ensure_ascii=False)
        if approval
        else "",
    }
