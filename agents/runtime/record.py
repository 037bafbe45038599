"""The run's record, in one place: the ``running`` execution inserted when the run starts, then its
steps, its final state and its audit event, written together when it ends (step 7 of the pipeline).

Written by the plain path: ``save()`` for the execution, ``bulk_create`` for the steps and
``audit_record`` for the event, in one transaction that takes the locks in the project's order
(``prisma_glow.locking``): the organisation first — ``audit_record`` locks it to read the chain head,
so the event is appended before anything else is written — then the rows. A transaction that holds
the organisation and then changes the execution (deleting the provider a run used sets its
provider to NULL) therefore queues behind the record, or the record behind it, instead of
deadlocking with it. (A one-statement version of this record, written by hand in SQL, saved about
0.2 ms at p95 in ``bench/execute.py``: not worth the second implementation it needed.)

PostgreSQL refuses the NUL character in text and JSON: it is stored as U+FFFD (``without_nul``: a
step's name, input and output when the step is made, so its streamed event says what is stored; the
answer and the error here). If the database still
refuses the record, the run ends ``failed`` with that reason, without the steps and the answer that
could not be stored, rather than staying ``running``.

The request's address for the audit event is ``prisma_glow.audit.context.current_ip``, which
``audit_record`` reads: a streamed run is produced in the context captured when its stream was
created (``agents.runtime.streaming``).
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.db import DatabaseError, transaction

from agents.models import Execution, ExecutionStatus, ExecutionStep, ToolApproval
from agents.runtime.serialize import without_nul
from guardrails.masking import found_entries, mask_data, mask_text
from prisma_glow.audit.services import audit_record
from prisma_glow.locking import lock_for_write

logger = logging.getLogger(__name__)

#: The execution's fields written when it ends.
FINAL_FIELDS = (
    "status",
    "output",
    "error",
    "citations",
    "tokens_in",
    "tokens_out",
    "cost",
    "latency_ms",
    "finished_at",
    "redactions",
)


def text_sha256(text: str) -> str:
    """The SHA-256 (hex) of ``text`` encoded as UTF-8: how the run's event records its input and answer."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def record_start(execution: Execution) -> None:
    """Insert the ``running`` execution, so that a run in progress (or one that crashes) is visible."""
    execution.save(force_insert=True)


def record_finish(
    execution: Execution,
    steps: list[ExecutionStep],
    *,
    actor,
    redactions: dict[str, str],
    found: dict[str, str] | None = None,
    ledger=None,
) -> None:
    """Write ``execution``'s final state (set by the caller), its ``steps`` and its audit event; if the
    database refuses them, the run's failure with the reason. Afterwards the execution holds the steps
    written (``execution.steps.all()`` needs no query).

    ``redactions``: the run's placeholders; ``found``: the values its ``block`` / ``warn`` PII
    guardrails found (value → label), kept in the same encrypted mapping without a placeholder
    (``guardrails.masking.found_entries``), so that lists and the audit log mask them too although no
    placeholder ever stood for them.

    ``ledger``: what the run holds of its budgets (``budgets.Ledger``), settled in the same
    transaction: the last call's real figure counted, its reservation released, whatever the
    outcome."""
    execution.output = without_nul(execution.output)
    execution.error = without_nul(execution.error[:2000])
    stored = {**redactions, **found_entries(found or {}, besides=redactions.values())}
    execution.redactions = json.dumps(stored) if stored else ""
    known = tuple(stored.values())
    try:
        _write(execution, steps, actor=actor, known=known, ledger=ledger)
    except DatabaseError as exc:
        # A value the database refuses must not leave the run "running": it ends failed, with the
        # reason, without the steps and the answer that could not be stored.
        logger.exception("Execution %s: its record could not be written", execution.pk)
        execution.status, execution.output, execution.citations = ExecutionStatus.FAILED, "", []
        execution.error = (
            f"the run's record could not be written ({exc.__class__.__name__}); the failure was logged"
        )
        steps = []
        _write(execution, steps, actor=actor, known=known, ledger=ledger)
    _hold_steps(execution, steps)


def _write(execution: Execution, steps: list[ExecutionStep], *, actor, known=(), ledger=None) -> None:
    """The audit event (which locks the organisation first), the steps and the execution's final
    state, in one transaction (a savepoint inside a caller's: a failure here must not doom the
    caller's work).

    The event is append-only and read in lists: its texts follow the identifier rule
    (``agents.privacy``). Its only text is the error (a tool-argument rejection or a blocked reason
    may quote a value), masked with the values the run knows (``known``) and the detectors; the
    input and the answer are not in it, and the execution's name holds neither: only their SHA-256
    (``text_sha256``, of the texts as stored), next to the release's number and content hash, so that
    ``agents.evidence.verify_pack`` can tell a run whose release or texts were rewritten in the
    database afterwards (the event is hash-chained: rewriting it breaks the chain)."""
    with transaction.atomic():
        audit_record(
            organization=execution.agent.organization,
            action="agent.execute",
            actor=actor,
            obj=execution,
            after={
                "agent": execution.agent_id,
                "persona_version": execution.persona.version,
                "release": execution.release.number if execution.release_id else None,
                "release_hash": execution.release.content_hash if execution.release_id else None,
                "input_sha256": text_sha256(execution.input),
                "output_sha256": text_sha256(execution.output),
                "as_of": execution.as_of.isoformat() if execution.as_of else None,
                "status": execution.status,
                "source": execution.source,
                "is_test": execution.is_test,
                "error": mask_text(execution.error, known=known),
                "tokens_in": execution.tokens_in,
                "tokens_out": execution.tokens_out,
                "cost": str(execution.cost) if execution.cost is not None else None,
                "latency_ms": execution.latency_ms,
                "conversation": execution.conversation_id,
                "turn": execution.turn,
            },
        )
        ExecutionStep.objects.bulk_create(steps)
        execution.save(update_fields=FINAL_FIELDS)
        if ledger:
            ledger.settle()


#: The execution's fields written when it pauses for a tool call's approval.
PAUSE_FIELDS = ("status", "tokens_in", "tokens_out", "cost", "latency_ms", "redactions")


def record_pause(
    execution: Execution,
    steps: list[ExecutionStep],
    approval: ToolApproval,
    *,
    actor,
    redactions: dict[str, str],
    found: dict[str, str] | None = None,
    ledger=None,
) -> None:
    """The run paused for a tool call's approval (``agents.runtime.approvals``): in one transaction,
    the organisation locked first (as any audited change takes it), the approval request (with the
    run's state), its audit event ``tool_approval.request``, the steps so far, the execution as
    ``awaiting_approval`` with its tokens, cost and time so far and its redaction mapping, and what
    the run held of its budgets settled: a paused run holds nothing (it reserves again when it
    resumes). The execution then holds the steps written."""
    stored = {**redactions, **found_entries(found or {}, besides=redactions.values())}
    execution.redactions = json.dumps(stored) if stored else ""
    with transaction.atomic():
        lock_for_write(organization=execution.organization_id)
        approval.save(force_insert=True)
        for step in steps:
            if step.kind == "approval" and "approval" in step.input:
                step.input["approval"] = approval.pk
        audit_record(
            organization=execution.agent.organization,
            action="tool_approval.request",
            actor=actor,
            obj=approval,
            after={
                "execution": execution.pk,
                "tool": approval.tool_id,
                "tool_name": approval.tool_name,
                # The log is append-only and read in lists: identifiers masked (agents.privacy).
                "arguments": mask_data(approval.arguments, known=tuple(stored.values())),
                "expires_at": approval.expires_at.isoformat(),
            },
        )
        ExecutionStep.objects.bulk_create(steps)
        execution.save(update_fields=PAUSE_FIELDS)
        if ledger:
            ledger.settle()
    _hold_steps(execution, steps)
    # The answer to ``execute`` shows the request without reading it back.
    execution.pending_tool_approval = approval


def _hold_steps(execution: Execution, steps: list[ExecutionStep]) -> None:
    """Keep ``steps`` as the execution's prefetched steps, as ``prefetch_related("steps")`` would, so
    that the API answer and the stream's last event are built from what the run holds."""
    held = execution.steps.all()
    held._result_cache = list(steps)
    held._prefetch_done = True
    execution._prefetched_objects_cache = {execution.steps.field.remote_field.cache_name: held}
