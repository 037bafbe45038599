"""What one run of an agent needs from the database, read up front (``agents.selectors`` reads it
from the live rows, ``agents.releases`` from a release's snapshot)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.models import Agent, AgentKnowledge, Budget, ModelProvider, Release
from personas.models import Persona

__all__ = ["RunConfiguration"]


@dataclass(frozen=True)
class RunConfiguration:
    """Everything a run of an agent needs from the database, read up front. Shared by the runs of a
    process (``agents.runtime.loading`` keeps it): frozen, its collections are tuples."""

    agent: Agent
    persona: Persona
    provider_row: ModelProvider | None
    tools: tuple
    knowledge: tuple[AgentKnowledge, ...]
    guardrails: tuple
    examples: tuple[tuple[str, str], ...]
    #: The budgets a run of the agent must stay within: its organisation's and its own
    #: (``agents.runtime.budgets``).
    budgets: tuple[Budget, ...] = ()
    #: The release this configuration is the snapshot of (``agents.releases``); None for the draft
    #: (the live rows).
    release: Release | None = None

    def guardrails_for(self, stage: str) -> list:
        return [g for g in self.guardrails if g.applies_to(stage)]
