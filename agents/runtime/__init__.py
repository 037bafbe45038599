"""The agent runtime: ``execute`` / ``execute_stream`` run an agent through the pipeline
(``pipeline.py``; its record ``record.py``, its stream ``streaming.py``) with a model provider
(``providers/``), its tools, knowledge and guardrails."""

from __future__ import annotations

from agents.runtime.errors import (
    AgentNotRunnable,
    ConversationBusy,
    PersonaNotFound,
    ProviderError,
    ReleaseAndPersonaPinned,
    ReleaseNotFound,
)
from agents.runtime.pipeline import execute
from agents.runtime.streaming import StreamBody, execute_stream

__all__ = [
    "AgentNotRunnable",
    "ConversationBusy",
    "PersonaNotFound",
    "ProviderError",
    "ReleaseAndPersonaPinned",
    "ReleaseNotFound",
    "StreamBody",
    "execute",
    "execute_stream",
]
