"""A run handed to a view as it happens: ``execute_stream`` returns the run's events (steps, the
answer's sentences, the finished execution last) as a ``RunStream``; ``encode`` turns them into
Server-Sent Events, the one protocol of the API and the console; ``StreamBody`` ties the response's
body to them so that a client gone ends the run.

The protocol (docs/api.md, "Streaming"), each event ``event: NAME`` + ``data: JSON``:

- ``step`` — a trace step as soon as it is recorded (the execution's step body);
- ``delta`` — ``{"text"}``: the next checked sentence of the answer, to append as text;
- ``retract`` — ``{"reason", "text"}``: replace everything shown of the answer by ``text``; ``reason``
  says why (a guardrail blocked the answer: ``text`` is empty) or is empty when the guardrails only
  rewrote the answer at the end (a notice placed before it);
- ``approval`` — the run paused: the model called a tool that requires a person's approval; the data
  is the approval request (``approvals.approval_to_dict``: its id, the tool, the arguments as the model
  wrote them). The ``execution`` follows (status ``awaiting_approval``) and the stream ends; the run
  resumes in the background once the call is decided (docs/api.md "Approval of tool calls");
- ``execution`` — the finished execution (the execution's detail body); always the last event of a
  run that ended or paused;
- ``error`` — ``{"status", "code", "message", "errors"}`` (the API's error body): the stream could not
  go on; a run still going is recorded as failed with the reason (``RunStream.fail``), one that had
  already ended (the failure was in building the ``execution`` event) keeps its record.

A run that fails after part of the answer was shown sends ``retract`` (``reason``: the failure,
``text`` empty) before its ``execution``.

A door may add to a payload (the console adds the server-rendered ``html`` of a step and of the
finished turn) but never changes its members.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable, Iterator

from agents.models import Execution
from agents.runtime.pipeline import StreamFailed, run_events, start

logger = logging.getLogger(__name__)

#: The events of the stream protocol.
EVENTS = ("step", "delta", "retract", "approval", "execution", "error")


def sse(event: str, data) -> str:
    """One Server-Sent Event of the protocol."""
    if event not in EVENTS:
        raise ValueError(f"Unknown stream event {event!r}; expected one of {', '.join(EVENTS)}.")
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def error_event(message: str, *, code: str = "run_failed", status: int = 500) -> str:
    """An ``error`` event whose data has the API's one error shape (``prisma_glow.api.errors``, which
    the runtime, below the doors, does not import)."""
    return sse("error", {"status": status, "code": code, "message": message, "errors": {}})


def encode(
    events: RunStream,
    *,
    step: Callable[[dict], dict] = lambda data: data,
    execution: Callable[[Execution], dict],
) -> Iterator[str]:
    """A run's events as Server-Sent Events. ``step`` maps a step's payload to what the door sends,
    ``execution`` gives the finished execution's body. Anything that fails while streaming ends the
    stream with an ``error`` event (and, once the body is closed, the run as failed)."""
    try:
        for event in events:
            kind, data = event["event"], event["data"]
            if kind == "step":
                data = step(data)
            elif kind == "execution":
                data = execution(events.execution)
            yield sse(kind, data)
    except Exception as exc:
        logger.exception("The stream of execution %s failed", events.execution.pk)
        events.fail(
            f"the stream could not be sent: internal error ({exc.__class__.__name__}); the failure was logged"
        )
        yield error_event("The run failed unexpectedly. The server log has the details.")


class RunStream:
    """The events of a started run, each produced in the context (``contextvars``) of the code that
    created the stream: they are produced after the view has returned, and the run's record still
    reads the request's address there (``prisma_glow.audit.context.current_ip``). ``execution`` is the
    run's execution (recorded as ``running``, final once the events are exhausted or closed)."""

    def __init__(self, execution: Execution, events: Iterator[dict | None]):
        self.execution = execution
        self._events = events
        self._context = contextvars.copy_context()

    def __iter__(self) -> RunStream:
        return self

    def __next__(self) -> dict:
        return self._context.run(next, self._events)

    def close(self) -> None:
        """End the run now: one not finished is recorded as failed (the client closed the stream)."""
        self._context.run(self._events.close)

    def fail(self, reason: str) -> None:
        """End the run now because its door cannot go on: one not finished is recorded as failed with
        ``reason``; one that ended keeps its record."""
        try:
            self._context.run(self._events.throw, StreamFailed(reason))
        except (StopIteration, StreamFailed):  # ended now, or had ended before
            pass

    def __del__(self) -> None:  # a stream dropped unread still finishes its record, in its context
        self.close()


def execute_stream(
    agent,
    input: str,
    *,
    actor=None,
    source: str,
    persona=None,
    is_test: bool = False,
    conversation=None,
    release=None,
    as_of=None,
) -> RunStream:
    """Like ``agents.runtime.pipeline.execute`` but returns the events as an iterator: steps and token
    deltas as they happen, the finished execution last. ``AgentNotRunnable`` (and ``ConversationBusy``)
    is raised here, before the iterator exists; the run is recorded as running when this returns."""
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
    )
    events = run_events(run, input, stream=True)
    next(events)
    return RunStream(run.execution, events)


class StreamBody:
    """What a view streams: ``body``, the response's text built from a run's ``events``. Django calls
    ``close()`` when it is done with the response, whether the client read it or not; that also
    closes ``events``, so a run whose client left before reading anything is recorded as failed then,
    on the thread that served it, rather than whenever the generator is collected."""

    def __init__(self, body: Iterator[str], events: RunStream):
        self.body, self.events = body, events

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.events.close()
