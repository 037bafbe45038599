"""The agent runtime: ``execute`` / ``execute_stream`` run an agent through the pipeline
(``pipeline.py``; its record ``record.py``, its stream ``streaming.py``) with a model provider
(``providers/``), its tools, knowledge and guardrails."""

from __future__ import annotations

from agents.runtime.errors import AgentNotRunnable, PersonaNotFound, ProviderError


def execute(agent, input, *, actor=None, source, persona=None, is_test=False, on_event=None):
    """See ``agents.runtime.pipeline.execute``."""
    from agents.runtime.pipeline import execute as _execute

    return _execute(
        agent, input, actor=actor, source=source, persona=persona, is_test=is_test, on_event=on_event
    )


def execute_stream(agent, input, *, actor=None, source, persona=None, is_test=False):
    """See ``agents.runtime.streaming.execute_stream``."""
    from agents.runtime.streaming import execute_stream as _execute_stream

    return _execute_stream(agent, input, actor=actor, source=source, persona=persona, is_test=is_test)


def stream_body(body, events):
    """See ``agents.runtime.streaming.StreamBody``."""
    from agents.runtime.streaming import StreamBody

    return StreamBody(body, events)


__all__ = ["AgentNotRunnable", "PersonaNotFound", "ProviderError", "execute", "execute_stream", "stream_body"]
