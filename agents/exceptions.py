"""The agents app's refusals, raised by its selectors and its runtime alike (below both: neither
imports the other for them)."""

from __future__ import annotations


class AgentNotRunnable(Exception):
    """The agent may not run as asked (draft through the API, no persona, unknown persona version…).

    Raised before anything is recorded; the message says why and what to do.
    """


class PersonaNotFound(AgentNotRunnable):
    """The requested persona version does not exist for the agent."""


class ReleaseNotFound(AgentNotRunnable):
    """The requested release does not exist for the agent."""


class ReleaseAndPersonaPinned(AgentNotRunnable):
    """A run pinned both a release and a persona version: it pins one (``agents.runtime.loading.
    check_pins``, the one statement of the rule; the API surfaces it as a 400 on ``release``)."""
