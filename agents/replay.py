"""Replay: a past execution's question asked again of another release of its agent.

``execution_replay`` runs the original's input, as of the original's day (``as_of``), against a release
(default: the agent's active one) as a new execution: a test run (``is_test``) pinned to that release,
linked to the original (``Execution.replay_of``), and audited (``execution.replay``, with the release's
number and hash). The replay runs on its own: a turn of a conversation is replayed without the earlier
turns (they are the original's history, not the release's). ``agents.comparison`` shows the two side by
side.

The input is the original's real input: an execution keeps its input as typed (``agents.privacy``:
only learning examples are stored with placeholders), so replaying it sends the client's identifiers
again — to the release's provider, through its guardrails and the privacy boundary like any run — and
shows them to the replayer as the new run's requester. Hence who may replay (docs/security.md): the
operation ``execution.replay`` (a member with the editor role or above, who sees every run's
identifiers anyway; an API key with the ``write`` scope), and only a caller who may see the original's
identifiers opened on its own (``agents.privacy.may_see_identifiers``) — for a key, the runs it made
itself. Anyone else gets ``PermissionDenied`` and nothing runs: a replay never turns a masked value into
a visible one.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from agents.models import Execution, Release
from agents.privacy import may_see_identifiers
from agents.runtime import AgentNotRunnable, execute
from prisma_glow.audit.services import audit_record
from prisma_glow.exceptions import ConflictError

#: Why a caller who may not see the original's identifiers cannot replay it.
REPLAY_REFUSED = (
    "You may replay only a run whose client identifiers you may see: an API key replays the runs it "
    "made itself; a member needs the editor role or above."
)


def replay_release(*, execution: Execution, release: Release | None) -> Release:
    """The release a replay of ``execution`` runs: ``release`` (one of the execution's agent's), or the
    agent's active release; ``ConflictError`` when it has none, ``ValidationError`` on ``release``
    when ``release`` is another agent's."""
    if release is None:
        release = execution.agent.active_release
        if release is None:
            raise ConflictError(
                f"The agent '{execution.agent.name}' has no active release: choose the release to "
                "replay this run against."
            )
    elif release.agent_id != execution.agent_id:
        raise ValidationError({"release": ["Choose a release of the execution's own agent."]})
    return release


def execution_replay(
    *, execution: Execution, actor, viewer, release: Release | None = None, source: str, user=None
) -> Execution:
    """Run ``execution``'s input again, as of its ``as_of``, against ``release`` (default: the agent's
    active release); return the new execution (``is_test``, ``replay_of`` = ``execution``).

    ``viewer``: the caller's principal (``Access`` / ``AdminAccess``; ``user`` the person behind it in
    the staff UI), who must be allowed to see the original's identifiers (``REPLAY_REFUSED``,
    ``PermissionDenied``). ``source``: the door (``api`` or ``console``). ``ConflictError`` when the
    agent has no active release and none is given, or when the release cannot run (a tool it names is
    gone…); ``BudgetExceeded`` as for any run."""
    if not may_see_identifiers(viewer, execution, opened_alone=True, user=user):
        raise PermissionDenied(REPLAY_REFUSED)
    release = replay_release(execution=execution, release=release)
    try:
        replay = execute(
            execution.agent,
            execution.input,
            actor=actor,
            source=source,
            is_test=True,
            release=release,
            as_of=execution.as_of,
            replay_of=execution,
        )
    except AgentNotRunnable as exc:
        raise ConflictError(str(exc)) from exc
    with transaction.atomic():
        audit_record(
            organization=execution.agent.organization,
            action="execution.replay",
            actor=actor,
            obj=replay,
            after={
                "replay_of": execution.pk,
                "release": release.number,
                "release_hash": release.content_hash,
                "as_of": replay.as_of.isoformat() if replay.as_of else None,
                "status": replay.status,
            },
        )
    return replay
