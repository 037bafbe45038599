"""Errors of the execution pipeline (the refusals before a run, shared with the selectors, are in
``agents.exceptions``)."""

from __future__ import annotations

from agents.exceptions import (
    AgentNotRunnable,
    PersonaNotFound,
    ReleaseAndPersonaPinned,
    ReleaseNotFound,
)

__all__ = [
    "AgentNotRunnable",
    "ConversationBusy",
    "PersonaNotFound",
    "ProviderError",
    "ExecutionTimeout",
    "ReleaseAndPersonaPinned",
    "ReleaseNotFound",
]


class ProviderError(Exception):
    """A model call failed; ``reason`` is the sentence recorded as the execution's error.
    ``processed`` False only when the provider provably did not work on the call (no connection
    before anything was sent, the outbound guard's refusal, an HTTP error status, for every attempt):
    budgets then count nothing; otherwise (a timeout, a malformed answer, a stream that broke off) the
    call may have been billed and budgets count all that was reserved for it."""

    def __init__(
        self, reason: str, *, status_code: int | None = None, retryable: bool = False, processed: bool = True
    ):
        self.reason = reason
        self.status_code = status_code
        self.retryable = retryable
        self.processed = processed
        super().__init__(reason)


class ExecutionTimeout(Exception):
    """The agent's overall time limit was reached."""


class ConversationBusy(Exception):
    """The conversation's previous turn is still running: turns of one conversation run one at a time
    (the next one needs its answer). Nothing is recorded."""
