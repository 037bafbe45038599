"""Step 1 of the pipeline: what a run needs from the database, read up front — and kept.

``load(agent, persona)`` returns the agent with its active (or requested) persona, its provider, its
enabled tools, knowledge bases and guardrails in order, and its approved learning examples.

Reading all that costs six queries; runs of the same agent are far more frequent than changes to it,
so each process keeps what it loaded (``LoadedCache``), keyed by the agent and the persona version
asked for, together with the organisation's configuration stamp at the time. Any change to a row that
makes up the configuration replaces the stamp (``prisma_glow.config_stamp``), and the entry is loaded
again. ``load`` reads the current stamp first (one query); a run does not even spend that: it uses the
kept entry (``kept``) only if the INSERT of its running row, which checks the stamp in the same
statement (``stamp_unchanged``), succeeds, and loads as ``load`` does otherwise
(``agents.runtime.pipeline.start``). A run therefore never uses a persona, guardrail, tool or
assignment that has changed since: the stamp is read in the run's own database connection, after the
change committed.

What is cached is shared by the runs of a process and must not be changed by them: ``Loaded`` is
frozen and its collections are tuples.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Prefetch, prefetch_related_objects

from agents.models import (
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentStatus,
    AgentTool,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
)
from agents.runtime.errors import AgentNotRunnable, PersonaNotFound
from personas.models import Persona

#: Approved learning examples added to the prompt (most recent first).
MAX_LEARNING_EXAMPLES = 5
#: Loaded configurations a process keeps (least recently used first out).
CACHE_SIZE = 512


@dataclass(frozen=True)
class Loaded:
    """Everything a run needs from the database, read up front."""

    agent: Agent
    persona: Persona
    provider_row: ModelProvider | None
    tools: tuple
    knowledge: tuple[AgentKnowledge, ...]
    guardrails: tuple
    examples: tuple[tuple[str, str], ...]

    def guardrails_for(self, stage: str) -> list:
        return [g for g in self.guardrails if g.applies_to(stage)]


class LoadedCache:
    """A bounded, thread-safe map of (agent id, persona version) → (stamp, Loaded)."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, stamp) -> Loaded | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def peek(self, key) -> tuple[object, Loaded] | None:
        """The entry under ``key`` as (stamp it was loaded under, Loaded), whatever the current stamp."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key, stamp, loaded: Loaded) -> None:
        with self._lock:
            self._entries[key] = (stamp, loaded)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


cache = LoadedCache()


def _persona_version(persona) -> int | None:
    if persona is None:
        return None
    version = persona.version if isinstance(persona, Persona) else persona
    try:
        return int(version)
    except (TypeError, ValueError):
        raise PersonaNotFound(f"Persona version {version!r} is not a number.")


def current_stamp(agent_id: int):
    """The configuration stamp of the agent's organisation (None when the agent does not exist)."""
    from prisma_glow.tenancy.models import Organization

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.config_stamp FROM {Agent._meta.db_table} a "
            f"JOIN {Organization._meta.db_table} o ON o.id = a.organization_id WHERE a.id = %s",
            [agent_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def kept(agent: Agent | int, persona=None) -> tuple[object, Loaded] | None:
    """What this process keeps for the agent and persona version, as (stamp, Loaded), without a query:
    current only while ``stamp_unchanged`` holds."""
    agent_id = agent.pk if isinstance(agent, Agent) else int(agent)
    return cache.peek((agent_id, _persona_version(persona)))


def stamp_unchanged(organization_id: int, stamp) -> tuple[str, list]:
    """An SQL condition (and its parameters) true while ``stamp`` is the organisation's stamp."""
    from prisma_glow.tenancy.models import Organization

    return (
        f"EXISTS (SELECT 1 FROM {Organization._meta.db_table} WHERE id = %s AND config_stamp = %s)",
        [organization_id, stamp],
    )


def load(agent: Agent | int, persona=None) -> Loaded:
    """The agent with its active (or requested) persona, provider, enabled assignments and approved
    examples: one query when this process has them under the current stamp, seven otherwise."""
    agent_id = agent.pk if isinstance(agent, Agent) else int(agent)
    version = _persona_version(persona)
    stamp = current_stamp(agent_id)
    key = (agent_id, version)
    if stamp is not None:
        loaded = cache.get(key, stamp)
        if loaded is not None:
            return loaded
    loaded = load_from_database(agent, agent_id, version)
    if stamp is not None:
        cache.put(key, stamp, loaded)
    return loaded


def load_from_database(agent: Agent | int, agent_id: int, version: int | None) -> Loaded:
    """``load`` without the cache, in a fixed number of queries whatever the number of assignments."""
    # The persona row brings the agent, its organisation and provider along (one query).
    personas = Persona.objects.select_related("agent__organization", "agent__provider").filter(
        agent_id=agent_id
    )
    if version is None:
        found = personas.filter(is_active=True).order_by("-version").first()
        if found is None:
            name = agent.name if isinstance(agent, Agent) else Agent.objects.get(pk=agent_id).name
            raise AgentNotRunnable(
                f"The agent '{name}' has no active persona: activate a persona version first."
            )
    else:
        found = personas.filter(version=version).order_by("-version").first()
        if found is None:
            name = agent.name if isinstance(agent, Agent) else Agent.objects.get(pk=agent_id).name
            raise PersonaNotFound(f"The agent '{name}' has no persona version {version}.")
    agent = found.agent
    prefetch_related_objects(
        [agent],
        Prefetch(
            "tool_assignments",
            queryset=AgentTool.objects.filter(enabled=True, tool__is_enabled=True)
            .select_related("tool")
            .order_by("order", "id"),
        ),
        Prefetch(
            "knowledge_assignments",
            queryset=AgentKnowledge.objects.filter(enabled=True)
            .select_related("knowledge_base")
            .order_by("order", "id"),
        ),
        Prefetch(
            "guardrail_assignments",
            queryset=AgentGuardrail.objects.filter(enabled=True, guardrail__enabled=True)
            .select_related("guardrail")
            .order_by("order", "id"),
        ),
    )
    provider_row = agent.provider
    if provider_row is None:
        provider_row = ModelProvider.objects.filter(
            organization_id=agent.organization_id, is_default=True
        ).first()
    examples = list(
        LearningExample.objects.filter(agent=agent, status=LearningExampleStatus.APPROVED)
        .order_by("-created_at", "-id")
        .values_list("input", "output")[:MAX_LEARNING_EXAMPLES]
    )
    examples.reverse()
    # Another organisation's object must never take part, whatever an assignment says.
    tools = tuple(
        a.tool
        for a in agent.tool_assignments.all()
        if a.tool.organization_id in (None, agent.organization_id)
    )
    knowledge = tuple(
        a
        for a in agent.knowledge_assignments.all()
        if a.knowledge_base.organization_id == agent.organization_id
    )
    guardrails = tuple(
        a.guardrail
        for a in agent.guardrail_assignments.all()
        if a.guardrail.organization_id == agent.organization_id
    )
    return Loaded(agent, found, provider_row, tools, knowledge, guardrails, tuple(examples))


def runnable(loaded: Loaded, *, is_test: bool) -> bool:
    """Only active agents run for real; drafts (and deprecated agents) only as recorded tests."""
    return loaded.agent.status == AgentStatus.ACTIVE or is_test


def check_runnable(loaded: Loaded, *, is_test: bool) -> None:
    """``runnable``, or ``AgentNotRunnable`` saying why not."""
    agent = loaded.agent
    if runnable(loaded, is_test=is_test):
        return
    if agent.status == AgentStatus.DRAFT:
        raise AgentNotRunnable(
            f"The agent '{agent.name}' is a draft: activate it to run it here, or test it in the console."
        )
    raise AgentNotRunnable(f"The agent '{agent.name}' is deprecated: activate it again to run it.")
