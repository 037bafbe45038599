"""A run handed to a view as it happens: ``execute_stream`` returns the run's events (steps, token
deltas, the finished execution last) as a ``RunStream``, and ``StreamBody`` ties the response's body
to them so that a client gone ends the run."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator

from agents.models import Execution
from agents.runtime.pipeline import run_events, start


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

    def __del__(self) -> None:  # a stream dropped unread still finishes its record, in its context
        self.close()


def execute_stream(
    agent, input: str, *, actor=None, source: str, persona=None, is_test: bool = False, conversation=None
) -> RunStream:
    """Like ``agents.runtime.pipeline.execute`` but returns the events as an iterator: steps and token
    deltas as they happen, the finished execution last. ``AgentNotRunnable`` (and ``ConversationBusy``)
    is raised here, before the iterator exists; the run is recorded as running when this returns."""
    run = start(
        agent, input, actor=actor, source=source, persona=persona, is_test=is_test, conversation=conversation
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
