"""The execution pipeline (DESIGN §3): one agent run, from the input to a persisted, audited trace.

1. load the agent, its persona, provider, assignments and approved examples (kept by the process while
   the organisation's configuration stamp is unchanged; ``start``), then record the run as running
2. input guardrails, in order — a block ends the run as ``blocked``; the provider is never called
3. retrieval from the assigned knowledge bases (as of today); every passage passes the
   retrieval-stage guardrails: a passage they block is dropped, one they flag is kept but marked and
   no tool is offered for the rest of the run, so an instruction planted in a document cannot
   trigger a tool call
4. messages = persona + approved learning examples + the conversation's earlier turns + numbered
   passages + input, composed and sent by the privacy boundary (``boundary.py``): the agent's PII
   guardrails screen the input, the passages, the examples, the earlier turns and every tool result
   before a provider sees them
5. provider call and a bounded tool loop: arguments parsed and validated before any call, every call
   a step, tools run with the time the run has left; a tool inside the firm gets the values behind
   the run's placeholders, and its result reaches the model with the same placeholders
6. output guardrails (block / redact / append / citations), then the requester's own PII restored;
   a streamed answer goes out sentence by sentence as the provider produces it, each sentence
   checked by the guardrails that can decide on it before it is shown (``output.py``); those that
   need the whole answer decide at the end, and a block then retracts what was shown
7. the execution and all its steps written in one transaction, with an audit event (``record.py``)

This module orchestrates; the record is ``record.py``, the JSON ``serialize.py``, the stream handed
to a view ``streaming.py``, the live answer ``output.py``. The pipeline is a generator of events
(``{"event": "step" | "delta" | "retract" | "execution", "data": …}``, the protocol of
``streaming.py``): ``execute`` drains it, ``streaming.execute_stream`` hands it to the caller
(Server-Sent Events).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import (
    Execution,
    ExecutionSource,
    ExecutionStatus,
    ExecutionStep,
    StepKind,
    StepStatus,
    ToolApproval,
    ToolApprovalStatus,
)
from agents.runtime import approvals, budgets, conversations, record
from agents.runtime.boundary import Boundary, compose, mask_known, note_found, pii_guardrails, send
from agents.runtime.budgets import NOTHING, Charge, Ledger
from agents.runtime.citations import Renumberer, renumber
from agents.runtime.errors import AgentNotRunnable, ExecutionTimeout, ProviderError
from agents.runtime.loading import check_runnable, load
from agents.runtime.output import OutputGate, Renumber, Restore, SentenceChecks, blocked_reason
from agents.runtime.providers import ModelRequest, ModelResponse, Provider, cost_of, get_provider
from agents.runtime.providers.base import ToolCall, parse_arguments
from agents.runtime.serialize import execution_to_dict, json_safe, step_to_dict, without_nul
from agents.selectors import RunConfiguration
from guardrails.engine import evaluate, restore
from guardrails.masking import mask_value
from knowledge.models import Document
from knowledge.search import search
from personas.models import default_max_tokens
from prisma_glow.exceptions import BudgetExceeded
from prisma_glow.tenancy.models import APIKey
from tools.registry import ToolArgumentsInvalid, run_tool, validate_arguments

logger = logging.getLogger(__name__)

#: Longest input accepted (characters).
MAX_INPUT_CHARS = 20_000
#: Tool calls the model may ask for in one round.
MAX_TOOL_CALLS_PER_ROUND = 8
#: Passages kept for the prompt, across all knowledge bases.
MAX_PASSAGES = 20
#: A placeholder as the model may write it (``[VAT_1]``, ``[vat_1]``).
PLACEHOLDER = re.compile(r"\[[A-Za-z][A-Za-z0-9_]*_\d+\]")


class ToolCallRejected(Exception):
    """The model asked for a tool call that cannot be made (unknown tool, bad arguments, too many)."""


class StreamFailed(Exception):
    """Thrown into a run's events by the door streaming them when it cannot go on (``reason`` is
    recorded as the run's error): the run ends ``failed`` at once, and no further event is produced."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _validate_input(text) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError({"input": "Ask a question: the input cannot be empty."})
    if len(text) > MAX_INPUT_CHARS:
        raise ValidationError(
            {"input": f"The input is too long ({len(text)} characters; at most {MAX_INPUT_CHARS})."}
        )
    return text


# --- Guardrail glue ----------------------------------------------------------


def _is_flag(result) -> bool:
    """A triggered check whose action marks the text as suspect (not a redaction or a disclaimer)."""
    return bool(result.triggered) and result.action not in ("redact", "append")


# --- The run ------------------------------------------------------------------------------------


@dataclass
class Loop:
    """Where a run is in its conversation with the model (step 5): what a pause for an approval stores
    (``approvals.dump_state``) and a resumed run starts from."""

    messages: list[dict]
    #: The question as sent (screened), which the offline engine reads.
    question: str
    passages: list
    rounds: int = 0
    #: Everything the model wrote so far, in every round.
    answer: str = ""
    #: The calls of the current round not made yet, in order.
    pending: list[ToolCall] = field(default_factory=list)


@dataclass
class Run:
    """The state of one execution while it runs."""

    loaded: RunConfiguration
    execution: Execution
    provider: Provider
    actor: Any
    deadline: float
    started: float
    stream: bool = False
    steps: list[ExecutionStep] = field(default_factory=list)
    redactions: dict[str, str] = field(default_factory=dict)
    tokens_in: int | None = 0
    tokens_out: int | None = 0
    cost: Decimal | None = Decimal("0")
    tools_withheld: str = ""
    #: The live answer of the last model call (``output.OutputGate``), when the run streams.
    gate: OutputGate | None = None
    #: Why what was shown was retracted (a sentence check blocked), once the ``retract`` event is sent.
    retracted: str = ""
    #: The privacy boundary (``boundary.py``): the run's PII guardrails over everything sent.
    boundary: Boundary | None = None
    #: Placeholders the requester sees masked rather than restored: an approved example's values,
    #: for an API key (``agents.privacy``: keys see only their own runs' identifiers).
    masked: dict[str, str] = field(default_factory=dict)
    #: The conversation's earlier turns to send, (question, answer) as stored (``conversations``).
    history: list[tuple[str, str]] = field(default_factory=list)
    #: Values the ``block`` / ``warn`` PII guardrails found (value → label): no placeholder stands for
    #: them, but the record keeps them known so that lists and the audit log mask them (``record``).
    found: dict[str, str] = field(default_factory=dict)
    #: What the run holds of its budgets (``budgets.Ledger``): reserved before each provider call,
    #: settled after and when the record is written.
    ledger: Ledger | None = None
    #: Why a budget refused the run (it ended ``refused``); ``execute`` raises it.
    refusal: BudgetExceeded | None = None
    #: The ordinal of the run's first step not yet recorded: a resumed run goes on after its pause's.
    first_ordinal: int = 1
    #: Time the run spent before its pause for an approval (ms), added to its latency.
    earlier_ms: int = 0
    #: Where the run paused for an approval (``Loop``), set when it pauses; the approval written then.
    paused: Loop | None = None
    approval: ToolApproval | None = None
    #: The person's decision on the call the run paused at, while the resumed run makes that call.
    decision: ToolApproval | None = None

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ExecutionTimeout()
        return left

    def step(
        self,
        kind: str,
        name: str,
        *,
        input=None,
        output=None,
        status=StepStatus.OK,
        duration_ms=0.0,
        started_at=None,
    ) -> ExecutionStep:
        """A new step of the run, its input and output as JSON data (``json_safe``) and, like its name,
        without NUL characters (``without_nul``: what its streamed event shows is what is stored),
        written with the record when the run ends (``record.record_finish``)."""
        step = ExecutionStep(
            execution=self.execution,
            ordinal=self.first_ordinal + len(self.steps),
            kind=kind,
            name=without_nul(name[:200]),
            status=status,
            duration_ms=max(0.0, round(float(duration_ms), 3)),
            started_at=started_at or timezone.now(),
            input=without_nul(json_safe(input or {})),
            output=without_nul(json_safe(output or {})),
        )
        self.steps.append(step)
        return step

    def add_usage(self, response: ModelResponse) -> Decimal | None:
        cost = cost_of(response, self.loaded.provider_row)
        if response.tokens_in is None or response.tokens_out is None or self.tokens_in is None:
            self.tokens_in = self.tokens_out = None
            self.cost = None
        else:
            self.tokens_in += response.tokens_in
            self.tokens_out += response.tokens_out
            self.cost = (self.cost or Decimal("0")) + (cost or Decimal("0"))
        return cost


def _event(kind: str, data) -> dict:
    return {"event": kind, "data": data}


#: What ``_step_event`` yields when nobody listens to the events (``execute`` without ``on_event``).
_UNHEARD = _event("step", None)


def _step_event(run: Run, step: ExecutionStep) -> dict:
    return _event("step", step_to_dict(step)) if run.stream else _UNHEARD


def start(
    agent,
    input,
    *,
    actor=None,
    source,
    persona=None,
    is_test=False,
    conversation=None,
    release=None,
    as_of=None,
    replay_of=None,
) -> Run:
    """Check everything that can refuse the run, then record it as ``running``: from here on a crash or
    a timeout leaves a visible trace.

    The configuration is the one this process keeps for the agent if the organisation's stamp is still
    the one it was loaded under (one query), else it is loaded again (``loading.load``); it is checked
    before the row is inserted.

    ``conversation``: None, a run on its own; ``conversations.NEW``, the first turn of a new
    conversation (one more INSERT); a ``Conversation`` of this agent (checked by the caller), its next
    turn, with its earlier turns sent to the model (``conversations.begin_turn``; ``ConversationBusy``
    while its last turn is still running).

    A run that its budgets could not let make even its smallest call (``budgets.precheck``: the persona
    and the question, plus ``max_tokens``) is recorded ``refused`` and ``BudgetExceeded`` raised, with
    the execution in ``execution``: a stream is refused before it starts.

    What runs (``loading.load``): ``release`` (a ``Release`` or its number) pins a release; else a
    test (``is_test``) runs the draft, the live rows (``persona`` may pick a version); else the agent's
    active release. ``as_of`` (a date, default today): the day the knowledge is searched as of.
    ``replay_of``: the execution this run replays (``agents.replay``), recorded on the new one."""
    _validate_input(input)
    if source not in ExecutionSource.values:
        raise ValueError(f"Unknown execution source {source!r}.")
    loaded = load(agent, persona, release=release, draft=is_test and release is None)
    check_runnable(loaded, is_test=is_test)
    run = _new_run(loaded, input, actor=actor, source=source, is_test=is_test)
    run.execution.as_of = as_of or timezone.localdate()
    run.execution.replay_of = replay_of
    refused = None
    if loaded.budgets:
        smallest = budgets.smallest_call(
            loaded.persona.system_prompt,
            input,
            loaded.persona.max_tokens or default_max_tokens(),
            loaded.provider_row,
        )
        refused = budgets.precheck(loaded.budgets, smallest)
    if conversation is None:
        record.record_start(run.execution)
    else:
        if conversation != conversations.NEW and conversation.agent_id != loaded.agent.pk:
            raise ValueError("A conversation continues with its own agent only.")
        run.history = conversations.begin_turn(
            run.execution, conversation, actor=actor, pii=pii_guardrails(loaded)
        )
    run.started = time.monotonic()
    run.deadline = run.started + loaded.agent.timeout_seconds
    run.ledger = Ledger(loaded.budgets, run.execution)
    if refused is not None:
        refused.execution = run.execution
        run.refusal = refused
        _finish(run, ExecutionStatus.REFUSED, "", refused.messages[0], [])
        raise refused
    return run


def _new_run(loaded: RunConfiguration, input: str, *, actor, source, is_test) -> Run:
    agent = loaded.agent
    provider_row = loaded.provider_row
    provider = get_provider(provider_row)
    model = (
        loaded.persona.model_override or agent.model or (provider_row.default_model if provider_row else "")
    )
    if provider.kind == "offline":
        model = model or "offline-extractive"
    execution = Execution(
        organization_id=agent.organization_id,
        agent=agent,
        persona=loaded.persona,
        release=loaded.release,
        provider=provider_row,
        provider_kind=provider.kind,
        model=model,
        input=input,
        status=ExecutionStatus.RUNNING,
        source=source,
        is_test=is_test,
        actor_user=actor
        if actor is not None and not isinstance(actor, APIKey) and getattr(actor, "pk", None)
        else None,
        actor_api_key=actor if isinstance(actor, APIKey) else None,
    )
    return Run(loaded=loaded, execution=execution, provider=provider, actor=actor, deadline=0.0, started=0.0)


def run_events(run: Run, input: str, *, stream=False, resume: Loop | None = None) -> Iterator[dict | None]:
    """The pipeline of a started run (``start``) as a generator of events; its return value is the
    finished ``Execution``. Its first item is ``None``: the caller takes it at once, so that closing
    the generator at any later point (a client gone) records the run as failed, never leaves it
    ``running``.

    A run that pauses for a tool call's approval is recorded ``awaiting_approval`` (``_pause``); a
    stream then sends an ``approval`` event and the ``execution`` and ends. ``resume``: the state of a
    paused run to continue from (``resume``), instead of the whole pipeline."""
    run.stream = stream
    execution = run.execution
    status, output, error, citations = ExecutionStatus.FAILED, "", "", []
    try:
        yield None
        if resume is None:
            status, output, error, citations = yield from _pipeline(run, input, execution.model)
        else:
            status, output, error, citations = yield from _resumed(run, resume)
    except BudgetExceeded as exc:
        # A budget could not cover the next provider call (``budgets.Ledger.reserve``).
        status, error = ExecutionStatus.REFUSED, exc.messages[0]
        exc.execution, run.refusal = execution, exc
    except ExecutionTimeout:
        error = f"agent timed out after {run.loaded.agent.timeout_seconds} s"
    except ProviderError as exc:
        error = exc.reason
    except ToolCallRejected as exc:
        error = str(exc)
    except GeneratorExit:
        _finish(run, ExecutionStatus.FAILED, "", "the client closed the stream before the run finished", [])
        raise
    except StreamFailed as exc:
        _finish(run, ExecutionStatus.FAILED, "", exc.reason, [])
        return execution
    except Exception as exc:  # the record must end in a final state whatever went wrong
        logger.exception("Execution %s failed unexpectedly", execution.pk)
        error = f"internal error ({exc.__class__.__name__}); the failure was logged"
    if status == ExecutionStatus.AWAITING_APPROVAL:
        try:
            _pause(run)
        except Exception as exc:  # the record must not stay ``running``
            logger.exception("Execution %s could not be paused", execution.pk)
            run.paused = None
            status, error = ExecutionStatus.FAILED, f"the run could not be paused ({exc.__class__.__name__})"
        else:
            if run.stream:
                yield _event("approval", approvals.approval_to_dict(run.approval))
                yield _event("execution", execution_to_dict(execution))
            return execution
    if (
        status in (ExecutionStatus.FAILED, ExecutionStatus.REFUSED)
        and run.gate is not None
        and run.gate.shown
    ):
        # What was shown is not the answer of a run that failed (or that a budget stopped between
        # tool rounds): the client clears it and says why.
        yield from _retract(run, error)
    _finish(run, status, output, error, citations)
    if run.stream:
        yield _event("execution", execution_to_dict(execution))
    return execution


def _finish(run: Run, status, output, error, citations) -> None:
    """The execution's final state, recorded with all its steps (``record.record_finish``)."""
    execution = run.execution
    execution.status = status
    execution.output = output
    execution.error = error
    execution.citations = citations
    execution.tokens_in = run.tokens_in
    execution.tokens_out = run.tokens_out
    execution.cost = run.cost
    execution.latency_ms = int((time.monotonic() - run.started) * 1000) + run.earlier_ms
    execution.finished_at = timezone.now()
    record.record_finish(
        execution, run.steps, actor=run.actor, redactions=run.redactions, found=run.found, ledger=run.ledger
    )


def _pipeline(run: Run, input: str, model: str):
    """Steps 2–6; returns (status, output, error, citations)."""
    loaded = run.loaded

    # 2. Input guardrails -----------------------------------------------------------------------
    text = input
    guards = loaded.guardrails_for("input")
    if guards:
        started_at = timezone.now()
        verdict = evaluate(guards, input, stage="input", context={"redactions": {}})
        run.redactions.update(verdict.redactions or {})
        note_found(run.found, input, verdict.results)
        text = verdict.text
        for result in verdict.results:
            yield _step_event(run, _guardrail_step(run, "input", result, verdict, started_at))
        if verdict.blocked:
            return ExecutionStatus.BLOCKED, "", _blocked_reason(verdict), []
    run.boundary = boundary = Boundary(pii_guardrails(loaded), run.redactions, found=run.found)
    # A PII guardrail assigned to the retrieval stage only screens the input too.
    text, steps, blocker = boundary.question(run, text, already=_ids(guards))
    for step in steps:
        yield _step_event(run, step)
    if blocker is not None:
        return ExecutionStatus.BLOCKED, "", _blocked_reason(SimpleNamespace(blocked_by=blocker)), []
    run.remaining()

    # 3. Retrieval --------------------------------------------------------------------------------
    passages = []
    if loaded.knowledge:
        passages = yield from _retrieve(run, text)
    run.remaining()

    # 4. Messages (the parts screened by the privacy boundary) ---------------------------------------
    examples, steps = boundary.examples(run, loaded.examples)
    for step in steps:
        yield _step_event(run, step)
    if run.execution.actor_api_key_id is not None:
        # Members who may run an agent (editors and above) may see any example's values in full; an
        # API key may not (``agents.privacy``): an example's identifiers reach it masked.
        run.masked.update({key: mask_value(run.redactions[key]) for key in boundary.from_examples})
    history, steps = boundary.history(run, run.history)
    for step in steps:
        yield _step_event(run, step)
    tool_specs = [_tool_spec(tool) for tool in loaded.tools]
    messages = compose(loaded, text, passages, bool(tool_specs), examples, history=history)
    return (yield from _converse(run, Loop(messages=messages, question=text, passages=passages)))


def _converse(run: Run, loop: Loop):
    """Steps 5–6 from ``loop``: the calls of the round still to make, then model calls and the tool
    loop, then the output guardrails; returns (status, output, error, citations). A call of a tool
    that requires approval is validated, then the run pauses there (``awaiting_approval``; ``run.paused``
    holds the loop) unless it is the call a person has just decided (``run.decision``)."""
    loaded = run.loaded
    agent = loaded.agent
    model = run.execution.model
    text, passages, messages = loop.question, loop.passages, loop.messages
    tool_specs = [_tool_spec(tool) for tool in loaded.tools]
    tools_by_name = {_function_name(tool): tool for tool in loaded.tools}
    output_guards = loaded.guardrails_for("output")
    persona = loaded.persona

    # 5. Model calls and the tool loop ----------------------------------------------------------
    while True:
        while loop.pending:
            call = loop.pending[0]
            decision, run.decision = run.decision, None
            if decision is None and approvals.needs_approval(tools_by_name.get(call.name)):
                yield from _request_approval(run, call, tools_by_name)
                run.paused = loop
                return ExecutionStatus.AWAITING_APPROVAL, "", "", []
            result_message = yield from _call_tool(run, call, tools_by_name, decision=decision)
            messages.append(result_message)
            loop.pending.pop(0)
        offer = tool_specs if (loop.rounds < agent.max_tool_rounds and not run.tools_withheld) else []
        timeout = run.remaining()
        if loaded.provider_row is not None:
            timeout = min(timeout, float(loaded.provider_row.timeout_seconds))
        request = ModelRequest(
            messages=[dict(m) for m in messages],
            model=model,
            tools=offer,
            temperature=float(persona.temperature) if persona.temperature is not None else None,
            max_tokens=persona.max_tokens,
            timeout=timeout,
            question=text,
            passages=passages,
        )
        response = yield from _call_model(run, request, passages)
        # Everything the model wrote, in every round (text before its tool calls too), is the answer:
        # it is what a streaming client was shown, and it is checked and recorded as a whole.
        loop.answer = _joined(loop.answer, response.content or "")
        if run.gate is not None and run.gate.blocked:
            # A sentence check blocked: no tool runs and the model is not called again; the answer so
            # far is checked as a whole below, as any answer is.
            break
        if not response.tool_calls:
            break
        if not offer:
            raise ToolCallRejected(
                f"the model asked for a tool after the limit of {agent.max_tool_rounds} tool round(s)"
                if not run.tools_withheld
                else f"the model asked for a tool although tools were withheld ({run.tools_withheld})"
            )
        if len(response.tool_calls) > MAX_TOOL_CALLS_PER_ROUND:
            raise ToolCallRejected(
                f"the model asked for {len(response.tool_calls)} tool calls in one round "
                f"(at most {MAX_TOOL_CALLS_PER_ROUND})"
            )
        loop.rounds += 1
        messages.append(response.to_message())
        loop.pending = list(response.tool_calls)
    answer = loop.answer

    # 6. Output guardrails ------------------------------------------------------------------------
    # The same checks on the whole answer whether the run streams or not: the record is the same.
    restore_map = {**run.redactions, **run.masked}
    if output_guards:
        started_at = timezone.now()
        verdict = evaluate(
            output_guards,
            answer,
            stage="output",
            context={"redactions": dict(run.redactions), "passages": passages},
        )
        note_found(run.found, answer, verdict.results)
        for result in verdict.results:
            yield _step_event(run, _guardrail_step(run, "output", result, verdict, started_at))
        if verdict.blocked:
            reason = _blocked_reason(verdict)
            yield from _retract(run, reason)
            return ExecutionStatus.BLOCKED, "", reason, []
        if run.gate is not None and run.gate.blocked:
            # The whole answer passed what a sentence blocked (``output.py`` says when that can be):
            # what was retracted stays retracted, and the trace says which guardrail blocked.
            status, output, error, citations = yield from _sentence_blocked(run)
            return status, output, error, citations
        answer = verdict.text
        # New placeholders from the output stage stay: they hide what the model produced, not the requester's data.
        run.redactions.update(verdict.redactions or {})
    # Checked above against the passages as numbered for the model; shown numbered 1…n as cited.
    answer, citations = renumber(answer, passages)
    final = restore(answer, restore_map) if restore_map else answer
    if run.gate is not None:
        shown = run.gate.shown
        if final.startswith(shown):
            # What the whole-answer guardrails appended (a disclaimer) follows the streamed answer.
            if final != shown:
                yield _event("delta", {"text": final[len(shown) :]})
        else:
            # The answer as recorded differs from what was shown (a notice placed before it): the
            # client replaces its text.
            yield _event("retract", {"reason": "", "text": final})
    return ExecutionStatus.COMPLETED, final, "", citations


def _joined(answer: str, text: str) -> str:
    """``text`` (a model round's) after ``answer`` (the earlier rounds'), on a new line unless the
    earlier text ended with whitespace: a sentence never runs across two rounds."""
    if answer and text and not answer[-1].isspace():
        return answer + "\n" + text
    return answer + text


def _sentence_blocked(run: Run):
    """The run ends ``blocked`` as soon as a sentence check blocked; its guardrail steps (the blocking
    one ``blocked``) say which guardrail it was."""
    gate = run.gate
    verdict = gate.verdict
    if verdict is not None:
        started_at = timezone.now()
        for result in verdict.results:
            yield _step_event(run, _guardrail_step(run, "output", result, verdict, started_at))
    yield from _retract(run, gate.blocked)
    return ExecutionStatus.BLOCKED, "", gate.blocked, []


def _retract(run: Run, reason: str):
    """Tell a streaming client to replace what it showed by ``reason`` (once per run)."""
    if run.stream and not run.retracted:
        run.retracted = reason
        yield _event("retract", {"reason": reason, "text": ""})


#: Why a guardrail blocked, as recorded and shown: ``output.blocked_reason``.
_blocked_reason = blocked_reason


def _guardrail_step(run: Run, stage: str, result, verdict, started_at) -> ExecutionStep:
    blocked = verdict.blocked and verdict.blocked_by is result
    if blocked:
        status = StepStatus.BLOCKED
    elif getattr(result, "status", "") == "error":
        status = StepStatus.FAILED
    elif not result.triggered or result.action == "append":
        # An appended disclaimer is the guardrail doing its job, not a warning.
        status = StepStatus.OK
    elif stage == "input" and result.action == "warn":
        # ``warn`` sends the input as typed and flags the step (as the boundary and retrieval do).
        status = StepStatus.FLAGGED
    else:
        status = StepStatus.WARNED
    return run.step(
        StepKind.GUARDRAIL,
        f"{result.name} ({stage})",
        input={
            "stage": stage,
            "guardrail_id": result.guardrail_id,
            "kind": result.kind,
            "action": result.action,
        },
        output=result.to_dict(),
        status=status,
        duration_ms=getattr(result, "duration_ms", 0.0) or 0.0,
        started_at=started_at,
    )


def _retrieve(run: Run, query: str):
    """Search the assigned knowledge bases in one call, then screen the passages."""
    loaded = run.loaded
    started_at = timezone.now()
    t0 = time.perf_counter()
    by_kb = {a.knowledge_base_id: a for a in loaded.knowledge}
    found = search(
        [a.knowledge_base for a in loaded.knowledge],
        query,
        top_k=min(100, sum(a.top_k for a in loaded.knowledge)),
        as_of=run.execution.as_of,
        min_score=min(a.min_score for a in loaded.knowledge),
        highlights=False,
    )
    # Each assignment's own top_k and minimum score.
    taken: dict[int, int] = {}
    passages = []
    for passage in found:
        assignment = by_kb.get(passage.knowledge_base_id)
        if assignment is None or passage.score < assignment.min_score:
            continue
        if taken.get(passage.knowledge_base_id, 0) >= assignment.top_k:
            continue
        taken[passage.knowledge_base_id] = taken.get(passage.knowledge_base_id, 0) + 1
        passages.append(passage)
    passages = passages[:MAX_PASSAGES]
    search_ms = (time.perf_counter() - t0) * 1000

    guards = loaded.guardrails_for("retrieval")
    kept, dropped, flagged = [], [], []
    per_guard: dict[Any, dict] = {}
    for passage in passages:
        if not guards:
            kept.append(passage)
            continue
        verdict = evaluate(
            guards,
            passage.text,
            stage="retrieval",
            context={"redactions": dict(run.redactions), "screening": passage.screening},
        )
        note_found(run.found, passage.text, verdict.results)
        if not verdict.blocked:  # a dropped passage's values never enter the run's mapping
            run.redactions.update(verdict.redactions or {})
        for result in verdict.results:
            entry = per_guard.setdefault(
                result.guardrail_id,
                {"result": result, "duration_ms": 0.0, "hits": [], "blocked": False, "triggered": False},
            )
            entry["duration_ms"] += getattr(result, "duration_ms", 0.0) or 0.0
            if result.triggered:
                entry["triggered"] = True
                entry["hits"].append(
                    {
                        "chunk_id": passage.chunk_id,
                        "document": passage.document_title,
                        "message": result.message,
                    }
                )
            if verdict.blocked and verdict.blocked_by is result:
                entry["blocked"] = True
        if verdict.blocked:
            dropped.append(passage)
            continue
        if verdict.text != passage.text:
            passage.text = verdict.text
        if any(_is_flag(r) for r in verdict.results):
            flagged.append(passage)
        kept.append(passage)
    # The privacy boundary: the PII guardrails that did not run on the passages above.
    sent, boundary_steps = run.boundary.passages(run, kept, already=_ids(guards))
    withheld = [p for p in kept if p not in sent]
    kept = sent
    if flagged:
        run.tools_withheld = f"{len(flagged)} retrieved passage(s) were flagged by a guardrail"
    # Each passage's document SHA-256 as the run read it (the evidence pack compares it with the
    # document's hash later): one query, only when passages were kept. The search does not return it:
    # its PostgreSQL function (knowledge.search.postgres) is installed by a migration of its own.
    document_hashes = (
        dict(Document.objects.filter(pk__in={p.document_id for p in kept}).values_list("pk", "sha256"))
        if kept
        else {}
    )

    step = run.step(
        StepKind.RETRIEVAL,
        "Knowledge search",
        input={
            "query": query,
            "knowledge_bases": [a.knowledge_base_id for a in loaded.knowledge],
            "as_of": run.execution.as_of.isoformat(),
        },
        output={
            "passages": [
                {
                    "n": i,
                    "chunk_id": p.chunk_id,
                    "document_id": p.document_id,
                    "document_title": p.document_title,
                    "document_sha256": document_hashes.get(p.document_id),
                    "knowledge_base_id": p.knowledge_base_id,
                    "citation": p.citation_label(),
                    "score": round(p.score, 4),
                    "flagged": p in flagged,
                }
                for i, p in enumerate(kept, start=1)
            ],
            "dropped": [{"chunk_id": p.chunk_id, "document_title": p.document_title} for p in dropped],
            "withheld": [{"chunk_id": p.chunk_id, "document_title": p.document_title} for p in withheld],
            "tools_withheld": run.tools_withheld,
        },
        status=StepStatus.DROPPED
        if dropped or withheld
        else (StepStatus.FLAGGED if flagged else StepStatus.OK),
        duration_ms=search_ms,
        started_at=started_at,
    )
    # The boundary's step follows the search's in the trace.
    for boundary_step in boundary_steps:
        run.steps.remove(boundary_step)
        run.steps.append(boundary_step)
    for ordinal, each in enumerate(run.steps, start=1):
        each.ordinal = ordinal
    yield _step_event(run, step)
    for boundary_step in boundary_steps:
        yield _step_event(run, boundary_step)
    for guardrail_id, entry in per_guard.items():
        result = entry["result"]
        # A retrieval guardrail never blocks the run: it drops passages or flags them (a redaction
        # that changed a passage is only a warning).
        if entry["blocked"]:
            status = StepStatus.DROPPED
        elif entry["triggered"]:
            status = StepStatus.WARNED if result.action in ("redact", "append") else StepStatus.FLAGGED
        else:
            status = StepStatus.OK
        yield _step_event(
            run,
            run.step(
                StepKind.GUARDRAIL,
                f"{result.name} (retrieval)",
                input={
                    "stage": "retrieval",
                    "guardrail_id": guardrail_id,
                    "kind": result.kind,
                    "action": result.action,
                    "passages_checked": len(passages),
                },
                output={"triggered": entry["triggered"], "passages": entry["hits"]},
                status=status,
                duration_ms=entry["duration_ms"],
                started_at=started_at,
            ),
        )
    return kept


def _function_name(tool) -> str:
    """The name the model calls the tool by: its slug, within the 64 characters function names allow."""
    return tool.slug[:64]


def _tool_spec(tool) -> dict:
    return {
        "type": "function",
        "function": {
            "name": _function_name(tool),
            "description": (tool.description or tool.name)[:1000],
            "parameters": tool.input_schema or {"type": "object", "properties": {}},
        },
    }


#: The messages a run sends (the admin's persona preview shows them): ``boundary.compose``.
build_messages = compose


def _ids(guardrails) -> set:
    return {g.pk for g in guardrails}


def _call_model(run: Run, request: ModelRequest, passages: list):
    """One provider call, streamed when asked; records the step (also when it fails). A streamed
    answer goes out sentence by sentence through the run's output gate (``output.OutputGate``).

    Before the call the run reserves its largest possible cost in its budgets (``BudgetExceeded``
    when one cannot cover it: the call is not made); after it, the real figure is what the budgets
    count: the provider's usage, or all that was reserved when it reported none or failed in a way that
    may have been billed (a timeout, a malformed answer, a stream that broke off: anything but a
    ``ProviderError`` whose ``processed`` is False, which counts nothing)."""
    ledger = run.ledger
    charge = Charge.of_request(request, run.loaded.provider_row)
    if ledger:
        ledger.reserve(charge)
    started_at = timezone.now()
    t0 = time.perf_counter()
    if run.stream and run.gate is None:
        run.gate = _gate(run, passages)
    gate = run.gate
    response = None
    first = True
    processed = True  # unless the provider provably did not work on the call
    try:
        for item in send(run.provider, request, stream=run.stream, boundary=run.boundary):
            if isinstance(item, ModelResponse):
                response = item
                continue
            if gate is not None:
                if first and item:
                    # A later round's text starts a new line, as ``_joined`` records it.
                    yield from _release(run, gate.feed(_joined(gate.fed, item)[len(gate.fed) :]))
                    first = False
                else:
                    yield from _release(run, gate.feed(item))
        if gate is not None:
            yield from _release(run, gate.flush())
    except ProviderError as exc:
        processed = exc.processed
        step = run.step(
            StepKind.MODEL_CALL,
            f"{run.provider.kind}: {request.model}",
            input=request.trace(),
            output={"error": exc.reason, "status_code": exc.status_code},
            status=StepStatus.FAILED,
            duration_ms=(time.perf_counter() - t0) * 1000,
            started_at=started_at,
        )
        yield _step_event(run, step)
        raise
    finally:
        if ledger and response is None:
            ledger.spent(charge if processed else NOTHING)
    if response is None:
        raise ProviderError("provider returned no answer")
    if ledger:
        ledger.spent(Charge.of(response, run.loaded.provider_row, charge))
    cost = run.add_usage(response)
    output = response.trace()
    output["cost"] = str(cost) if cost is not None else None
    step = run.step(
        StepKind.MODEL_CALL,
        f"{run.provider.kind}: {request.model}",
        input=request.trace(),
        output=output,
        duration_ms=(time.perf_counter() - t0) * 1000,
        started_at=started_at,
    )
    yield _step_event(run, step)
    return response


def _prepared_call(run: Run, call, tools_by_name: dict, *, arguments=None):
    """Check one tool call before it is made (or paused for approval): the tool is assigned, the
    arguments parse (``arguments``: a person's edited arguments instead of the model's) and, as the
    tool would receive them, satisfy its schema. Returns (tool, name, the step's input, the arguments
    as written, the arguments the tool receives, started_at); a call that cannot be made is a failed
    step and ``ToolCallRejected``."""
    started_at = timezone.now()
    tool = tools_by_name.get(call.name)
    name = tool.name if tool is not None else call.name
    record_input: dict = {"tool": call.name, "call_id": call.id, "arguments_raw": call.arguments[:5000]}
    problem = None
    given = None
    if tool is None:
        problem = f"the model called the tool '{call.name[:80]}', which is not assigned to this agent"
    else:
        try:
            if arguments is None:
                arguments = parse_arguments(call.arguments)
            given, restored = _tool_arguments(run, tool, arguments)
            if restored:
                record_input["placeholders_restored"] = restored
            validate_arguments(tool, given)
        except ValueError as exc:
            if isinstance(exc, ToolArgumentsInvalid):
                # The schema's messages quote the values: a restored one goes back to its placeholder.
                problem = f"the model called '{tool.slug}' with invalid arguments: {mask_known(str(exc), run.redactions)}"
            else:
                problem = f"the model called '{tool.slug}' with arguments that are not valid JSON"
    if problem:
        yield _step_event(
            run,
            run.step(
                StepKind.TOOL_CALL,
                name,
                input=record_input,
                output={"error": problem},
                status=StepStatus.FAILED,
                started_at=started_at,
            ),
        )
        raise ToolCallRejected(problem)
    record_input["arguments"] = _as_json(arguments)
    return tool, name, record_input, arguments, given, started_at


def _as_json(arguments):
    """Parsed arguments (numbers as ``Decimal``) as plain JSON data, numbers written as given."""
    return json.loads(json.dumps(arguments, default=lambda d: f"{d:f}"))


def _call_tool(run: Run, call, tools_by_name: dict, *, decision: ToolApproval | None = None):
    """Validate and run one tool call; every call is a step. Returns the tool message for the model.

    The model writes the run's placeholders (``[VAT_1]``) where it means a client identifier. A tool
    that runs inside the firm (``Tool.receives_identifiers``: every built-in tool, and HTTP tools marked
    ``inside_firm``) gets the real values in their place; any other tool gets the placeholders. The
    arguments are validated as the tool receives them. The step records the arguments as the model
    wrote them (placeholders, and the list of those restored, never the values) and the result as the
    model reads it (``Boundary.trace``); the result goes back to the model through the boundary
    (``Boundary.tool_result``), where a value the model knows as ``[VAT_1]`` is ``[VAT_1]`` again.

    ``decision``: a person's decision on this call (it required approval). Approved with edited
    arguments, the tool gets those (validated again; the step records them as ``arguments`` and the
    model's as ``arguments_raw``); refused, the tool is not called and the model reads "the person
    refused this call: <reason>" as its result."""
    edited = decision.edited_arguments if decision is not None else None
    if decision is not None and decision.status == ToolApprovalStatus.REFUSED:
        started_at = timezone.now()
        tool = tools_by_name.get(call.name)
        name = tool.name if tool is not None else call.name
        step = run.step(
            StepKind.TOOL_CALL,
            name,
            input={"tool": call.name, "call_id": call.id, "arguments_raw": call.arguments[:5000]},
            output={"ok": False, "error": "refused by a person", "reason": decision.reason},
            status=StepStatus.FAILED,
            started_at=started_at,
        )
        content = approvals.refused_content(decision.reason)
        boundary_steps: list = []
        if run.boundary is not None:
            content, boundary_steps = run.boundary.tool_result(run, content, tool=name)
        yield _step_event(run, step)
        for each in boundary_steps:
            yield _step_event(run, each)
        return {"role": "tool", "tool_call_id": call.id, "content": content}
    tool, name, record_input, arguments, given, started_at = yield from _prepared_call(
        run, call, tools_by_name, arguments=edited
    )
    if edited is not None:
        record_input["edited_by_approver"] = True
    result = run_tool(tool, given, timeout=run.remaining())
    step = run.step(
        StepKind.TOOL_CALL,
        name,
        input=record_input,
        status=StepStatus.OK if result.ok else StepStatus.FAILED,
        duration_ms=result.duration_ms,
        started_at=started_at,
    )
    content = result.content_for_model()
    boundary_steps = []
    output = result.to_dict()
    if run.boundary is not None:
        content, boundary_steps = run.boundary.tool_result(run, content, tool=name)
        output = run.boundary.trace(output)
    step.output = without_nul(json_safe(output))
    yield _step_event(run, step)
    for each in boundary_steps:
        yield _step_event(run, each)
    return {"role": "tool", "tool_call_id": call.id, "content": content}


# --- Approval of tool calls (``approvals.py``) -----------------------------------------------------


def _request_approval(run: Run, call, tools_by_name: dict):
    """The call needs a person: checked as if it were made now (a call that could not be made fails
    the run as it always does), then an ``approval`` step with the arguments as the model wrote them
    (placeholders, never the values behind them); ``_pause`` writes the request."""
    tool, name, record_input, arguments, _given, started_at = yield from _prepared_call(
        run, call, tools_by_name
    )
    run.approval = ToolApproval(
        execution=run.execution,
        tool=tool,
        tool_name=name[:120],
        call_id=call.id[:200],
        arguments=record_input["arguments"],
        expires_at=approvals.expiry(),
    )
    step = run.step(
        StepKind.APPROVAL,
        f"Approval requested: {name}",
        input={**record_input, "approval": None},
        output={"status": ToolApprovalStatus.PENDING, "expires_at": run.approval.expires_at.isoformat()},
        started_at=started_at,
    )
    yield _step_event(run, step)


def _pause(run: Run) -> None:
    """Record the run as paused for ``run.approval`` with its state (``record.record_pause``)."""
    loop, execution, approval = run.paused, run.execution, run.approval
    execution.status = ExecutionStatus.AWAITING_APPROVAL
    execution.tokens_in, execution.tokens_out, execution.cost = run.tokens_in, run.tokens_out, run.cost
    elapsed_ms = int((time.monotonic() - run.started) * 1000) + run.earlier_ms
    execution.latency_ms = elapsed_ms
    approval.state = approvals.dump_state(
        messages=loop.messages,
        question=loop.question,
        rounds=loop.rounds,
        answer=loop.answer,
        pending=loop.pending,
        passages=loop.passages,
        redactions=run.redactions,
        found=run.found,
        masked=run.masked,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost=run.cost,
        elapsed_ms=elapsed_ms,
        next_ordinal=run.first_ordinal + len(run.steps),
        tools_withheld=run.tools_withheld,
    )
    record.record_pause(
        execution,
        run.steps,
        approval,
        actor=run.actor,
        redactions=run.redactions,
        found=run.found,
        ledger=run.ledger,
    )
    from agents.tasks import schedule_expiry  # the tasks call the runtime: the one lazy side

    # The worker expires the request at its deadline (a second after, so that it is due). The pause is
    # recorded whatever happens here: the command and the next resumed run's sweep expire it too.
    try:
        schedule_expiry(approval.expires_at + dt.timedelta(seconds=1))
    except Exception:
        logger.exception("Execution %s: the expiry of its tool call could not be scheduled", execution.pk)


def _resumed(run: Run, loop: Loop):
    """A resumed run: the person's decision as a step, then the call it decided and the rest of the
    loop (``_converse``)."""
    decision = run.decision
    approved = decision.status == ToolApprovalStatus.APPROVED
    verb = "Approved" if approved else "Refused"
    decider = decision.decided_by
    details = {
        "approval": decision.pk,
        "decision": decision.status,
        "decided_by": decider.get_username() if decider is not None else None,
        "decided_by_id": decision.decided_by_id,
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
    }
    if decision.edited_arguments is not None:
        details["arguments"] = decision.arguments
        details["edited_arguments"] = decision.edited_arguments
        verb = "Approved with edited arguments"
    if not approved:
        details["reason"] = decision.reason
    yield _step_event(
        run,
        run.step(
            StepKind.APPROVAL,
            f"{verb}: {decision.tool_name}",
            input={"tool": decision.tool_name, "call_id": decision.call_id},
            output=details,
            status=StepStatus.OK if approved else StepStatus.WARNED,
        ),
    )
    run.boundary = Boundary(pii_guardrails(run.loaded), run.redactions, found=run.found)
    return (yield from _converse(run, loop))


def resume(approval_id: int) -> Execution | None:
    """Continue the run paused at the approval ``approval_id`` once a person decided it, from its stored
    state (``approvals.load_state``), in this process: the worker's task ``agents.tasks.resume_tool_call``.

    The execution goes back to ``running`` with ``resumed_at`` now (its time limit and the "stale" rule
    count from there: the wait does not count) and the state is cleared, in one transaction that
    claims it: a second task for the same approval finds nothing to do. The configuration is the
    run's: its release (immutable), or for a test run of the draft the draft as it is now (a tool
    unassigned meanwhile fails the call). Returns the finished execution,
    or None when there was nothing to resume (pending, expired, already resumed)."""
    with transaction.atomic():
        approval = (
            ToolApproval.objects.select_for_update(of=("self",))
            .select_related("execution", "decided_by")
            .filter(pk=approval_id)
            .first()
        )
        if approval is None or approval.status not in (
            ToolApprovalStatus.APPROVED,
            ToolApprovalStatus.REFUSED,
        ):
            return None
        execution = Execution.objects.select_for_update().get(pk=approval.execution_id)
        if execution.status != ExecutionStatus.AWAITING_APPROVAL or not approval.state:
            return None
        text, approval.state = approval.state, ""
        approval.save(update_fields=["state"])
        execution.status, execution.resumed_at = ExecutionStatus.RUNNING, timezone.now()
        execution.save(update_fields=["status", "resumed_at"])
    execution = Execution.objects.select_related(
        "agent__organization", "persona", "release", "actor_user", "actor_api_key"
    ).get(pk=execution.pk)
    actor = execution.actor_api_key or execution.actor_user
    try:
        state = approvals.load_state(text)
        if execution.release_id is not None:
            loaded = load(execution.agent, release=execution.release)
        else:
            loaded = load(
                execution.agent, execution.persona.version if execution.persona else None, draft=True
            )
        check_runnable(loaded, is_test=execution.is_test)
    except (AgentNotRunnable, ValueError) as exc:
        return _fail_resume(execution, actor, f"the run could not resume: {exc}", text)
    run = Run(
        loaded=loaded,
        execution=execution,
        provider=get_provider(loaded.provider_row),
        actor=actor,
        deadline=0.0,
        started=time.monotonic(),
    )
    run.deadline = run.started + loaded.agent.timeout_seconds
    run.redactions, run.found, run.masked = state["redactions"], state["found"], state["masked"]
    run.tokens_in, run.tokens_out, run.cost = state["tokens_in"], state["tokens_out"], state["cost"]
    run.tools_withheld = state["tools_withheld"]
    run.first_ordinal, run.earlier_ms = state["next_ordinal"], state["elapsed_ms"]
    run.ledger = Ledger(loaded.budgets, execution)
    run.decision = approval
    loop = Loop(
        messages=state["messages"],
        question=state["question"],
        passages=state["passages"],
        rounds=state["rounds"],
        answer=state["answer"],
        pending=state["pending"],
    )
    events = run_events(run, execution.input, resume=loop)
    next(events)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value


def _fail_resume(execution: Execution, actor, reason: str, text: str) -> Execution:
    """A decided run that cannot go on (its agent may no longer run, its state is unreadable) ends
    ``failed`` with the reason."""
    try:
        state = approvals.load_state(text)
    except ValueError:
        state = {"redactions": {}, "found": {}}
    execution.status, execution.output, execution.error = ExecutionStatus.FAILED, "", reason
    execution.citations = []
    execution.finished_at = timezone.now()
    record.record_finish(execution, [], actor=actor, redactions=state["redactions"], found=state["found"])
    return execution


def _tool_arguments(run: Run, tool, arguments):
    """The arguments ``tool`` receives and the placeholders restored in them: the values behind the
    run's placeholders for a tool inside the firm, the arguments as the model wrote them otherwise."""
    if not run.redactions or not tool.receives_identifiers:
        return arguments, []
    known = {key.upper(): key for key in run.redactions}
    used: set[str] = set()

    def walk(value):
        if isinstance(value, str):
            found = {known[m.upper()] for m in PLACEHOLDER.findall(value) if m.upper() in known}
            if not found:
                return value
            used.update(found)
            return restore(value, run.redactions)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    given = walk(arguments)
    return given, sorted(used)


def _gate(run: Run, passages: list) -> OutputGate:
    """The live answer's gate: the sentence checks of the output guardrails, then the requester's
    values restored; between them the citations numbered 1…n in order of appearance, as the recorded
    answer's are (``citations.renumber``; the sentence checks read the model's own numbers, as the
    whole-answer checks do)."""
    checks = SentenceChecks(run.loaded.guardrails_for("output"), redactions=run.redactions, passages=passages)
    gate = OutputGate(
        [
            checks,
            Renumber(Renumberer(passages)),
            Restore(run.redactions, hidden=checks.own, masked=run.masked),
        ]
    )
    gate.blocked = run.retracted
    return gate


def _release(run: Run, pieces: list[str]):
    """The gate's released sentences as ``delta`` events; ``retract`` once it blocks."""
    for piece in pieces:
        yield _event("delta", {"text": piece})
    if run.gate is not None and run.gate.blocked:
        yield from _retract(run, run.gate.blocked)


# --- Entry points --------------------------------------------------------------------------------


def execute(
    agent,
    input: str,
    *,
    actor=None,
    source: str,
    persona=None,
    is_test: bool = False,
    on_event: Callable[[dict], None] | None = None,
    conversation=None,
    release=None,
    as_of=None,
    replay_of=None,
) -> Execution:
    """Run ``agent`` on ``input`` and return the finished ``Execution`` (steps saved).

    Raises ``AgentNotRunnable`` (nothing recorded) when the agent may not run as asked, Django's
    ``ValidationError`` for an empty or oversized input, and ``BudgetExceeded`` when a budget refused
    the run (recorded ``refused``; the execution is the exception's ``execution``). With ``on_event``
    the provider streams and every event (step, delta, execution) is passed to it as it happens.
    ``conversation``, ``release``, ``as_of``, ``replay_of``: see ``start``.
    """
    run = start(
        agent,
        input,
        actor=actor,
        source=source,
        persona=persona,
        is_test=is_test,
        conversation=conversation,
        release=release,
        as_of=as_of,
        replay_of=replay_of,
    )
    events = run_events(run, input, stream=on_event is not None)
    next(events)
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            if run.refusal is not None:
                raise run.refusal
            return stop.value
        if on_event is not None:
            on_event(event)


def approved_arguments(tool, arguments, redactions: dict[str, str]):
    """``arguments`` a person set for a paused call, checked as the model's were (``_prepared_call``):
    the placeholders restored for a tool inside the firm, then the tool's schema.
    ``ToolArgumentsInvalid`` says what is wrong, quoting placeholders rather than restored values."""
    given, _restored = _tool_arguments(SimpleNamespace(redactions=redactions), tool, arguments)
    try:
        validate_arguments(tool, given)
    except ToolArgumentsInvalid as exc:
        raise ToolArgumentsInvalid([mask_known(m, redactions) for m in exc.messages]) from exc
    return given
