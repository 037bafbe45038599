"""Errors of the execution pipeline."""

from __future__ import annotations


class AgentNotRunnable(Exception):
    """The agent may not run as asked (draft through the API, no persona, unknown persona version…).

    Raised before anything is recorded; the message says why and what to do.
    """


class PersonaNotFound(AgentNotRunnable):
    """The requested persona version does not exist for the agent."""


class ProviderError(Exception):
    """A model call failed; ``reason`` is the sentence recorded as the execution's error."""

    def __init__(self, reason: str, *, status_code: int | None = None, retryable: bool = False):
        self.reason = reason
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(reason)


class ExecutionTimeout(Exception):
    """The agent's overall time limit was reached."""
