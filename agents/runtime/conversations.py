"""Conversations: a run that continues one gets its place (the next turn) and the history the model reads.

``begin_turn`` records the run's ``running`` execution as the next turn of its conversation, or as the
first turn of a new one (``NEW``), and returns the earlier turns to send: the last completed ones
(``CONVERSATION_HISTORY_TURNS``, whole turns within ``CONVERSATION_HISTORY_CHARS`` characters, newest
first), as (question, answer) pairs in the order they happened. A blocked or failed turn is left out:
it has no answer, and its question may be what a guardrail stopped. The pairs are stored as the
requester typed and saw them (with client identifiers): the pipeline sends them through the privacy
boundary (``Boundary.history``), never as they are.

Turns of one conversation run one at a time: the conversation's row is locked (``SELECT … FOR
UPDATE``) while the next turn number is taken, and a conversation whose last turn is still running
refuses the next (``ConversationBusy``: the API's 409). A turn left ``running`` by a crashed process no
longer counts once the agent's time limit and a minute have passed. The unique (conversation, turn)
constraint backs this up where the database has no row locks (SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from agents.models import RUN_GRACE, Conversation, Execution, ExecutionStatus, run_is_live, running_since
from agents.runtime import record
from agents.runtime.errors import ConversationBusy
from guardrails.checks import build_check
from guardrails.masking import find_identifiers, mask_value

#: ``begin_turn(…, conversation=NEW)``: the run starts a conversation.
NEW = "new"
#: Longest conversation title (characters).
TITLE_LENGTH = 80
#: How long past the agent's time limit a ``running`` turn still holds its conversation (the one rule
#: for a run left behind by a crash, shared with budget reservations: ``agents.models.run_is_live``).
STALE_AFTER = RUN_GRACE

_SPACES = re.compile(r"\s+")


def conversation_title(text: str, *, known: Iterable[str] = ()) -> str:
    """The conversation's name, from its first question: whitespace collapsed, every client identifier
    masked by the one rule (``guardrails.masking``: ``DE89 •••• 3000``), the values in ``known`` too
    (what the agent's own PII guardrails find, e.g. with more telephone regions), at most
    ``TITLE_LENGTH`` characters. It names the conversation in lists and in the append-only audit log."""
    text = _SPACES.sub(" ", text).strip()
    parts: list[str] = []
    masked: list[tuple[int, int]] = []  # where the masked forms are in the title
    position = length = 0
    for start, end, entity in find_identifiers(text, known=known):
        parts.append(text[position:start])
        length += start - position
        form = mask_value(text[start:end], entity)
        parts.append(form)
        masked.append((length, length + len(form)))
        length += len(form)
        position = end
    parts.append(text[position:])
    text = "".join(parts)
    if len(text) > TITLE_LENGTH:
        cut = TITLE_LENGTH - 1
        # Never end inside a masked form, and prefer a word boundary.
        inside = next((s for s, e in masked if s < cut < e), None)
        if inside is not None:
            cut = inside
        elif " " in text[TITLE_LENGTH // 2 : cut]:
            cut = text.rfind(" ", 0, cut)
        text = text[:cut].rstrip() + "…"
    return text


def identifiers_in(text: str, guards) -> list[str]:
    """The values ``guards`` (the agent's PII guardrails, as ``boundary.pii_guardrails`` lists them)
    find in ``text`` with their own configuration: what the title must mask besides what the masking's
    detectors find."""
    values: list[str] = []
    for guard in guards:
        if not guard.get("enabled", True):
            continue
        try:
            check = build_check("pii", guard["config"])
        except ValidationError:  # an invalid configuration finds nothing; the run reports it
            continue
        values.extend(text[start:end] for start, end, _ in check.find(text))
    return values


def begin_turn(execution: Execution, conversation, *, actor=None, pii=()) -> list[tuple[str, str]]:
    """Record ``execution`` (not saved yet) as ``running``, as the next turn of ``conversation`` (a
    ``Conversation`` of the same agent) or as the first of a new one (``NEW``, started by ``actor``,
    named by ``conversation_title`` with what the agent's PII guardrails ``pii`` find masked too);
    returns the earlier turns to send as (question, answer) pairs. Raises ``ConversationBusy`` while
    the conversation's last turn is still running."""
    if conversation == NEW:
        started = Conversation(
            organization_id=execution.organization_id,
            agent=execution.agent,
            title=conversation_title(execution.input, known=identifiers_in(execution.input, pii)),
            started_by_user=execution.actor_user,
            started_by_api_key=execution.actor_api_key,
        )
        started.save(force_insert=True)
        execution.conversation, execution.turn = started, 1
        record.record_start(execution)
        return []
    try:
        with transaction.atomic():
            # The lock serialises the turns' numbering (evaluated here: select_for_update is lazy).
            list(Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("pk"))
            last = (
                Execution.objects.filter(conversation=conversation)
                .order_by("-turn")
                .values("turn", "status", "created_at", "resumed_at")
                .first()
            )
            if last is not None and last["status"] == ExecutionStatus.AWAITING_APPROVAL:
                raise ConversationBusy(
                    f"The conversation's previous turn (turn {last['turn']}) waits for a person to approve "
                    "a tool call: once it is decided and the turn has its answer, ask again."
                )
            if last is not None and _holds(last, execution.agent.timeout_seconds):
                raise ConversationBusy(
                    f"The conversation's previous turn (turn {last['turn']}) is still running: "
                    "wait for its answer, then ask again."
                )
            history = _history(conversation)
            execution.conversation, execution.turn = conversation, (last["turn"] if last else 0) + 1
            record.record_start(execution)
    except IntegrityError as exc:  # another turn took the number first (no row locks: SQLite)
        execution.pk = None
        raise ConversationBusy(
            "Another turn of this conversation started at the same moment: wait for its answer, then ask again."
        ) from exc
    return history


def _holds(last: dict, timeout_seconds: int) -> bool:
    """Whether the last turn still holds the conversation: running (since it started, or resumed after
    an approval), and not left behind by a crash. A turn paused for an approval holds it too (above)."""
    return run_is_live(last["status"], running_since(last["created_at"], last["resumed_at"]), timeout_seconds)


def _history(conversation) -> list[tuple[str, str]]:
    """The last completed turns that fit the limits, oldest first."""
    turns, budget = settings.CONVERSATION_HISTORY_TURNS, settings.CONVERSATION_HISTORY_CHARS
    if turns <= 0 or budget <= 0:
        return []
    rows = (
        Execution.objects.filter(conversation=conversation, status=ExecutionStatus.COMPLETED)
        .order_by("-turn")
        .values_list("input", "output")[:turns]
    )
    pairs, used = [], 0
    for question, answer in rows:
        used += len(question) + len(answer)
        if used > budget:
            break
        pairs.append((question, answer))
    pairs.reverse()
    return pairs
