"""Step 1 of the pipeline: what a run needs from the database, read up front — and kept.

``load(agent, persona)`` returns the agent with its active (or requested) persona, its provider, its
enabled tools, knowledge bases and guardrails in order, and its approved learning examples.

Reading all that costs seven queries (``agents.selectors.agent_run_configuration``); runs of the same
agent are far more frequent than changes to it, so each process keeps what it loaded (``LoadedCache``),
keyed by the agent, the persona version and the release asked for, together with the organisation's configuration
stamp at the time. Any change to a row that makes up the configuration replaces the stamp
(``prisma_glow.config_stamp``), and the entry is loaded again. ``load`` reads the current stamp first
(one query, in the run's own database connection, after any change committed) and uses the kept entry
only under that stamp: a run never uses a persona, guardrail, tool or assignment that has changed
since.

What is cached is shared by the runs of a process and must not be changed by them:
``RunConfiguration`` is frozen and its collections are tuples.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from agents.exceptions import PersonaNotFound, ReleaseAndPersonaPinned, ReleaseNotFound
from agents.models import Agent, AgentStatus, Release
from agents.runtime.errors import AgentNotRunnable
from agents.selectors import (
    RunConfiguration,
    agent_run_configuration,
    persona_version_number,
    release_run_configuration,
)
from personas.models import Persona

__all__ = [
    "LoadedCache",
    "cache",
    "check_pins",
    "check_runnable",
    "current_stamp",
    "load",
    "runnable",
]

#: Configurations a process keeps (least recently used first out).
CACHE_SIZE = 512


class LoadedCache:
    """A bounded, thread-safe map of (agent id, persona version, release id) → (stamp,
    RunConfiguration). The draft's entries have no release id; a release's no persona version."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, stamp) -> RunConfiguration | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key, stamp, loaded: RunConfiguration) -> None:
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


def current_stamp(agent_id: int):
    """The configuration stamp of the agent's organisation (None when the agent does not exist)."""
    return Agent.objects.filter(pk=agent_id).values_list("organization__config_stamp", flat=True).first()


def _stamp_and_release(agent_id: int):
    """(the organisation's configuration stamp, the agent's active release id) in one query; (None,
    None) when the agent does not exist."""
    row = (
        Agent.objects.filter(pk=agent_id)
        .values_list("organization__config_stamp", "active_release_id")
        .first()
    )
    return row or (None, None)


PIN_BOTH_MESSAGE = "Pin either a release or a persona version, not both."


def check_pins(*, release, persona) -> None:
    """A run pins a release or a persona version (or neither), not both: ``ReleaseAndPersonaPinned``
    otherwise. ``load`` checks it for every caller; the API's request serializer calls it to answer
    a 400 before anything else."""
    if release is not None and persona is not None:
        raise ReleaseAndPersonaPinned(PIN_BOTH_MESSAGE)


def _release_id(agent_id: int, release, persona_version: int | None) -> int:
    """The id of the release asked for: a ``Release`` of this agent, its number, or (``release`` None)
    the newest approved (once activated) release whose persona is ``persona_version`` (how an API run
    that pins a persona version runs). ``ReleaseNotFound`` when the release does not exist,
    ``PersonaNotFound`` when the persona version does not; ``AgentNotRunnable`` when the version exists
    but no approved release uses it (like a release never approved, it may not run)."""
    if isinstance(release, Release):
        if release.agent_id != agent_id:
            raise ReleaseNotFound("That release belongs to another agent.")
        return release.pk
    releases = Release.objects.filter(agent_id=agent_id)
    if release is not None:
        try:
            number = int(release)
        except (TypeError, ValueError):
            raise ReleaseNotFound(f"Release {release!r} is not a number.")
        found = releases.filter(number=number).values_list("pk", flat=True).first()
        if found is None:
            raise ReleaseNotFound(f"This agent has no release {number}.")
        return found
    found = (
        releases.filter(snapshot__persona__version=persona_version, activated_at__isnull=False)
        .order_by("-number")
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        if not Persona.objects.filter(agent_id=agent_id, version=persona_version).exists():
            raise PersonaNotFound(f"This agent has no persona version {persona_version}.")
        raise AgentNotRunnable(
            f"No approved release of this agent uses persona version {persona_version}: pin a release "
            "instead, or create one with that version and request its activation."
        )
    return found


def load(agent: Agent | int, persona=None, *, release=None, draft: bool = False) -> RunConfiguration:
    """The run configuration of ``agent`` as of the current stamp: one query when this process keeps
    it under that stamp, six or seven otherwise.

    Which configuration: ``release`` (a ``Release`` or its number) pins one; else ``draft`` runs the
    live rows (``persona`` picks a version, default the active one) — the console's test runs; else
    the agent's active release (or, when ``persona`` is given, the newest release with that persona
    version). An agent without an active release loads its draft, which ``check_runnable`` refuses
    for anything but a test."""
    agent_id = agent.pk if isinstance(agent, Agent) else int(agent)
    version = persona_version_number(persona)
    check_pins(release=release, persona=version)
    stamp, active_release_id = _stamp_and_release(agent_id)
    if release is not None or (version is not None and not draft):
        release_id = _release_id(agent_id, release, version)
    elif draft:
        release_id = None
    else:
        release_id = active_release_id
    key = (agent_id, None if release_id else version, release_id)
    if stamp is not None:
        loaded = cache.get(key, stamp)
        if loaded is not None:
            return loaded
    if release_id is None:
        loaded = agent_run_configuration(agent=agent, persona=version)
    else:
        loaded = release_run_configuration(release=release_id)
    if stamp is not None:
        cache.put(key, stamp, loaded)
    return loaded


def runnable(loaded: RunConfiguration, *, is_test: bool) -> bool:
    """Only active agents run for real; drafts (and deprecated agents) only as recorded tests."""
    return loaded.agent.status == AgentStatus.ACTIVE or is_test


def check_runnable(loaded: RunConfiguration, *, is_test: bool) -> None:
    """``runnable``, or ``AgentNotRunnable`` saying why not. Outside tests only a release that went
    live at some time runs (its ``activated_at``): the active one, or an earlier one pinned by number;
    replay, the console and evaluations (``is_test``) may run any release."""
    agent = loaded.agent
    if runnable(loaded, is_test=is_test):
        if agent.status == AgentStatus.ACTIVE and not is_test and loaded.release is None:
            raise AgentNotRunnable(
                f"The agent '{agent.name}' has no active release: create a release and activate it."
            )
        if not is_test and loaded.release is not None and loaded.release.activated_at is None:
            raise AgentNotRunnable(
                f"Release {loaded.release.number} of '{agent.name}' has never been approved: request its "
                "activation, or run it as a test in the console."
            )
        return
    if agent.status == AgentStatus.DRAFT:
        raise AgentNotRunnable(
            f"The agent '{agent.name}' is a draft: activate it to run it here, or test it in the console."
        )
    raise AgentNotRunnable(f"The agent '{agent.name}' is deprecated: activate it again to run it.")
