"""Eval-gated activation and four eyes: how a release of an agent goes live.

**Gates.** Other apps decide whether a release may go live by registering a gate in their
``AppConfig.ready()`` (the evaluations app: "the required suite's latest run on exactly this release
passed")::

    from agents.activation import GateResult, register_gate

    @register_gate(name="evaluations")
    def suite_passed(agent, release) -> GateResult | None:
        ...
        return GateResult(passed=False, message="Suite 'VAT basics' failed on release 3.",
                          failures=["reverse charge (must pass)"], evidence={"run": 41, "pass_rate": 0.8})

A gate returns ``None`` when it has nothing to say about the agent (no suite required), else a
``GateResult``: whether it passed, the failing items a person can act on (case names), and the
evidence to record with the decision (the run that passed). A gate that raises fails closed: its
error is a failure. ``run_gates`` asks every gate; ``gate_failures`` lists what failed.

**Requests** (the services below, the one code path of every door). An editor — a person, or an API
key with the ``write`` scope (a CI pipeline that has just released and evaluated) — requests the
activation of a release: ``activation_request_create``. One request per agent is pending; a new one
supersedes it. An admin or owner who is not the requester, signed in (never a key) with a fresh
second factor (the doors ask ``release.approve`` of ``prisma_glow.policy``), approves it:
``activation_request_approve`` runs the gates (refused → ``ActivationRefusedByGates``, 409 with the
failures, and the request stays pending so it can be approved after a re-run), then
``agents.services.agent_activate`` with the gates' evidence. Or refuses it with a reason; the
requester cancels it. An organisation with ``one_person_activation`` lets an admin or owner approve
their own request (still gated, still stepped up, audited as ``self_approved``). Every step is audited
with the release's number and content hash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import ActivationRequest, ActivationRequestStatus, Agent, AgentStatus, Release
from agents.services import agent_activate
from prisma_glow.audit.services import audit_record
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict
from prisma_glow.tenancy.models import APIKey

logger = logging.getLogger(__name__)


# --- Gates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """What one gate says of a release: ``passed``; when not, a ``message`` and the ``failures`` (the
    items a person fixes: failing case names…); either way the ``evidence`` recorded with the decision
    (JSON: the evaluation run, its pass rate…)."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class GateFailure:
    """A gate that did not pass: its name, a sentence, and the failing items."""

    gate: str
    message: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        # A detail may be a sentence of its own ("Case (must pass): The answer does not contain …."):
        # one full stop at the end, and semicolons between details that may hold commas.
        details = "; ".join(detail.rstrip(" .") for detail in self.details)
        return f"{self.message} Failing: {details}." if self.details else self.message


@dataclass(frozen=True)
class GateVerdict:
    """Every gate's answer on one release: ``passed`` when none failed; ``evidence`` by gate name."""

    passed: bool
    failures: list[GateFailure]
    evidence: dict[str, dict]

    def as_json(self) -> dict:
        return {
            "passed": self.passed,
            "gates": self.evidence,
            "failures": [{"gate": f.gate, "message": f.message, "details": f.details} for f in self.failures],
        }


Gate = Callable[[Agent, Release], "GateResult | None"]
_GATES: dict[str, Gate] = {}


def register_gate(fn: Gate | None = None, *, name: str | None = None):
    """Register ``fn(agent, release) -> GateResult | None`` as an activation gate (usable as a
    decorator, with or without ``name=``; default: the function's dotted name). Registering a name
    again replaces its gate. Returns ``fn``."""

    def add(gate: Gate) -> Gate:
        _GATES[name or f"{gate.__module__}.{gate.__qualname__}"] = gate
        return gate

    return add(fn) if fn is not None else add


def unregister_gate(name_or_fn: str | Gate) -> None:
    """Remove a gate by its name or function (nothing when it is not registered)."""
    for name, gate in list(_GATES.items()):
        if name == name_or_fn or gate is name_or_fn:
            del _GATES[name]


def registered_gates() -> list[str]:
    return sorted(_GATES)


def run_gates(*, agent: Agent, release: Release) -> GateVerdict:
    """Ask every registered gate about ``release`` of ``agent``. A gate that raises, or answers
    something other than a ``GateResult`` or None, fails (closed): an activation is never let through
    because a check could not run."""
    failures: list[GateFailure] = []
    evidence: dict[str, dict] = {}
    for name in sorted(_GATES):
        try:
            result = _GATES[name](agent, release)
        except Exception as exc:  # noqa: BLE001 - any error of a gate refuses the activation
            logger.exception("Activation gate %s failed on release %s", name, release.pk)
            failures.append(
                GateFailure(name, f"The check '{name}' could not run ({type(exc).__name__}: {exc}).")
            )
            continue
        if result is None:
            continue
        if not isinstance(result, GateResult):
            failures.append(GateFailure(name, f"The check '{name}' gave no verdict."))
            continue
        evidence[name] = dict(result.evidence)
        if not result.passed:
            message = result.message or f"The check '{name}' did not pass on release {release.number}."
            failures.append(GateFailure(name, message, [str(item) for item in result.failures]))
    return GateVerdict(passed=not failures, failures=failures, evidence=evidence)


def gate_failures(agent: Agent, release: Release) -> list[GateFailure]:
    """What keeps ``release`` of ``agent`` from going live (empty: every gate passed)."""
    return run_gates(agent=agent, release=release).failures


class ActivationRefusedByGates(ConflictError):
    """The gates refused the release (409 with each failure under ``gates``); nothing changed."""

    def __init__(self, release: Release, failures: list[GateFailure]):
        self.failures = failures
        super().__init__(
            {
                "release": [
                    f"Release {release.number} did not pass the activation checks, so it was not "
                    "activated; the request stays pending: fix what failed (re-run the evaluation) and "
                    "approve it again."
                ],
                "gates": [str(failure) for failure in failures],
            }
        )


# --- Who may decide ---------------------------------------------------------------------------

FOUR_EYES_MESSAGE = (
    "You requested this activation, so you cannot approve it: another admin or owner must (four eyes). "
    "An owner can allow one-person activation in the organisation's settings."
)
SESSION_MESSAGE = "An activation is approved by a signed-in admin or owner, never by an API key."


def _user(actor):
    return actor if isinstance(actor, get_user_model()) else None


def _label(actor) -> str:
    if isinstance(actor, APIKey):
        return f"API key {actor.name} ({actor.prefix})"
    user = _user(actor)
    return user.get_username() if user is not None else "system"


def is_requester(request: ActivationRequest, actor) -> bool:
    """Whether ``actor`` (a user or an API key) made ``request``."""
    if isinstance(actor, APIKey):
        return request.requested_by_key_id == actor.pk
    user = _user(actor)
    return user is not None and request.requested_by_id == user.pk


def is_own_request(request: ActivationRequest, actor) -> bool:
    """Whether ``request`` is ``actor``'s own for the four-eyes rule: ``actor`` made it, or it was made
    through an API key that ``actor`` created (asking through one's own key is still asking). Reads
    ``request.requested_by_key`` (load it with the request: no query then)."""
    if is_requester(request, actor):
        return True
    user = _user(actor)
    if user is None or request.requested_by_key_id is None:
        return False
    return request.requested_by_key.created_by_id == user.pk


def approval_refusal(request: ActivationRequest, actor) -> str | None:
    """Why ``actor`` may not approve ``request`` (None: the four-eyes rule allows it). The role and
    the second factor are the doors' (``release.approve``); this is what depends on the request: its
    requester — or the creator of the key it was requested through — never approves it alone."""
    if _user(actor) is None:
        return SESSION_MESSAGE
    if is_own_request(request, actor) and not request.organization.one_person_activation:
        return FOUR_EYES_MESSAGE
    return None


# --- Services ---------------------------------------------------------------------------------


def _lock(agent: Agent) -> Agent:
    lock_for_write(organization=agent.organization_id)
    return (
        Agent.objects.select_for_update(no_key=True, of=("self",))
        .select_related("organization", "active_release")
        .get(pk=agent.pk)
    )


def _pending(request: ActivationRequest) -> ActivationRequest:
    """``request`` read again under lock (its agent locked first); 409 unless it is still pending."""
    agent = _lock(request.agent)
    fresh = (
        ActivationRequest.objects.select_for_update(of=("self",))
        .select_related("release", "organization", "requested_by", "requested_by_key")
        .get(pk=request.pk)
    )
    fresh.agent = agent
    if not fresh.is_pending:
        raise ConflictError(
            f"This activation request is already {fresh.get_status_display().lower()}: nothing to decide. "
            "Request the activation again if it is still wanted."
        )
    return fresh


def _audit(request: ActivationRequest, action: str, actor, **extra) -> None:
    audit_record(
        organization=request.organization,
        action=action,
        actor=actor,
        obj=request,
        after={
            "agent": request.agent_id,
            "release": request.release.number,
            "release_hash": request.release.content_hash,
            "status": request.status,
            **extra,
        },
    )


def _close(request: ActivationRequest, actor, status: str, reason: str = "", verdict=None) -> None:
    request.status = status
    request.decided_by = _user(actor)
    request.decider_label = _label(actor)
    request.decided_at = timezone.now()
    request.reason = reason
    if verdict is not None:
        request.verdict = verdict
    request.full_clean()
    request.save()


@retry_on_conflict
@transaction.atomic
def activation_request_create(
    *, agent: Agent, actor, release: Release | None = None, notes: str = ""
) -> ActivationRequest:
    """Ask for ``release`` of ``agent`` (default: its newest) to go live. A pending request of the
    agent is superseded (audited ``activation_request.supersede``). 409 when the agent has no release
    or already runs that one; ``ValidationError`` when the release is another agent's or the actor is
    the system."""
    agent = _lock(agent)
    if release is None:
        release = Release.objects.filter(agent=agent).order_by("-number").first()
        if release is None:
            raise ConflictError(
                f"The agent '{agent.name}' has no release yet: create a release of its configuration, "
                "then request its activation."
            )
    if release.agent_id != agent.pk:
        raise ValidationError({"release": ["That release belongs to another agent."]})
    if not isinstance(notes, str):
        raise ValidationError({"notes": ["Notes must be text."]})
    if agent.status == AgentStatus.ACTIVE and agent.active_release_id == release.pk:
        raise ConflictError(
            {
                "release": [
                    f"Release {release.number} of '{agent.name}' is already active: nothing to request."
                ]
            }
        )
    if actor is None:
        raise ValidationError("An activation request is made by a person or an API key.")
    for earlier in (
        ActivationRequest.objects.select_for_update(of=("self",))
        .filter(agent=agent, status=ActivationRequestStatus.PENDING)
        .select_related("release", "organization")
    ):
        _close(
            earlier,
            actor,
            ActivationRequestStatus.SUPERSEDED,
            reason=f"Superseded by a request for release {release.number}.",
        )
        _audit(earlier, "activation_request.supersede", actor, superseded_by_release=release.number)
    request = ActivationRequest(
        organization=agent.organization,
        agent=agent,
        release=release,
        requested_by=_user(actor),
        requested_by_key=actor if isinstance(actor, APIKey) else None,
        requester_label=_label(actor),
        notes=notes.strip(),
    )
    request.full_clean()
    request.save(force_insert=True)
    _audit(request, "activation_request.create", actor, notes=request.notes)
    return request


@retry_on_conflict
@transaction.atomic
def activation_request_approve(*, request: ActivationRequest, actor) -> ActivationRequest:
    """Approve a pending request: the four-eyes rule (``approval_refusal``: a signed-in person, not the
    requester unless the organisation allows one-person activation), then the gates (refused: 409
    ``ActivationRefusedByGates``, the request stays pending), then ``agent_activate`` of its release
    with the gates' evidence. The doors check the role (admin or owner) and the second factor
    (``release.approve``) before calling this."""
    request = _pending(request)
    refusal = approval_refusal(request, actor)
    if refusal is not None:
        raise ConflictError(refusal)
    verdict = run_gates(agent=request.agent, release=request.release)
    if not verdict.passed:
        raise ActivationRefusedByGates(request.release, verdict.failures)
    self_approved = is_own_request(request, actor)
    record = {**verdict.as_json(), "self_approved": self_approved}
    agent_activate(
        agent=request.agent,
        actor=actor,
        release=request.release,
        approval={"request": request.pk, "gates": verdict.evidence, "self_approved": self_approved},
    )
    _close(request, actor, ActivationRequestStatus.APPROVED, verdict=record)
    _audit(
        request,
        "activation_request.approve",
        actor,
        gates=verdict.evidence,
        self_approved=self_approved,
        requested_by=request.requester_label,
    )
    return request


@retry_on_conflict
@transaction.atomic
def activation_request_refuse(*, request: ActivationRequest, actor, reason: str) -> ActivationRequest:
    """Refuse a pending request, saying why (``reason`` required, shown to the requester)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError({"reason": ["Say why the activation is refused: the requester reads it."]})
    request = _pending(request)
    if _user(actor) is None:
        raise ConflictError("An activation is refused by a signed-in admin or owner, never by an API key.")
    _close(request, actor, ActivationRequestStatus.REFUSED, reason=reason.strip())
    _audit(request, "activation_request.refuse", actor, reason=request.reason)
    return request


@retry_on_conflict
@transaction.atomic
def activation_request_cancel(*, request: ActivationRequest, actor, reason: str = "") -> ActivationRequest:
    """The requester withdraws a pending request (409 for anyone else: an admin refuses instead)."""
    request = _pending(request)
    if not is_requester(request, actor):
        raise ConflictError(
            "Only the person or API key that requested this activation can cancel it; an admin or owner "
            "refuses it instead."
        )
    _close(request, actor, ActivationRequestStatus.CANCELLED, reason=(reason or "").strip())
    _audit(request, "activation_request.cancel", actor)
    return request
