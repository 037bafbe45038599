"""Staff pages of activation requests (``agents.activation``): the approval inbox, its decisions
(approve with a second-factor step-up, refuse with a reason, cancel), the agent page's request form and
the dashboard panel.

**The inbox takes sections.** ``/admin/approvals/`` (``admin:approvals``) renders every registered
section in order: ``register_inbox_section(name, template=, context=, order=)``, where
``context(request, organization)`` returns the section's variables (or None to leave it out for this
user). Activation requests are one section; another kind of approval (tool calls) adds its own from
its admin module, nothing here changes. A section template reads ``section.context``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from agents import activation
from agents.models import ActivationRequest, ActivationRequestStatus, Release
from prisma_glow import policy
from prisma_glow.admin.base import render_admin_page, run_service, validation_messages
from prisma_glow.admin.refusal import refusal_page
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.admin.stepup import gate

# --- The inbox and its sections ----------------------------------------------------------------


@dataclass(frozen=True)
class InboxSection:
    """One kind of decision waiting in the approval inbox."""

    name: str
    template: str
    context: Callable[[Any, Any], dict | None]
    order: int = 100


_SECTIONS: dict[str, InboxSection] = {}


def register_inbox_section(
    name: str, *, template: str, context: Callable[[Any, Any], dict | None], order: int = 100
) -> InboxSection:
    """Add a section to the approval inbox (a name is registered once)."""
    if name in _SECTIONS:
        raise ImproperlyConfigured(f"An inbox section named {name!r} is already registered.")
    _SECTIONS[name] = section = InboxSection(name, template, context, order)
    return section


def unregister_inbox_section(name: str) -> None:
    _SECTIONS.pop(name)


def inbox(request):
    """The approval inbox: each registered section with its context, for the selected organisation."""
    access = get_admin_access(request)
    if access.organization is None or not policy.allows(access, "agent.view"):
        return refusal_page(request, "Choose an organisation you are a member of to see its approvals.")
    sections = []
    for section in sorted(_SECTIONS.values(), key=lambda s: s.order):
        context = section.context(request, access.organization)
        if context is not None:
            sections.append({"name": section.name, "template": section.template, "context": context})
    return render_admin_page(
        request, "admin/agents/approvals.html", {"inbox_sections": sections}, title="Approvals"
    )


# --- Activation requests: what the pages show ----------------------------------------------------


def release_page_url(agent_id: int, number: int) -> str:
    """The release's page (built by the releases' admin): by its URL name when routed, else its path."""
    try:
        return reverse("admin:agents_agent_release", args=[agent_id, number])
    except NoReverseMatch:
        return f"/admin/agents/agent/{agent_id}/releases/{number}/"


@dataclass
class RequestRow:
    """An activation request as a page shows it, with what the viewer may do to it."""

    request: ActivationRequest
    release_url: str
    can_approve: bool
    can_refuse: bool
    can_cancel: bool
    approve_blocked: str


def request_rows(request, rows) -> list[RequestRow]:
    """``rows`` (their agent and release loaded) with the viewer's possible decisions; no query."""
    access = get_admin_access(request)
    may_approve = policy.allows(access, "release.approve")
    may_refuse = policy.allows(access, "release.refuse")
    out = []
    for row in rows:
        blocked = activation.approval_refusal(row, request.user) if may_approve and row.is_pending else ""
        mine = activation.is_requester(row, request.user)
        out.append(
            RequestRow(
                request=row,
                release_url=release_page_url(row.agent_id, row.release.number),
                can_approve=row.is_pending and may_approve and not blocked,
                # The requester withdraws (cancel) rather than refuses their own request.
                can_refuse=row.is_pending and may_refuse and not mine,
                can_cancel=row.is_pending and mine,
                approve_blocked=blocked or "",
            )
        )
    return out


RECENT_DECISIONS = 10


def activation_section(request, organization) -> dict:
    """The inbox's section of activation requests: every pending one, and the latest decisions (two
    queries, whatever their number)."""
    rows = ActivationRequest.objects.filter(organization=organization).select_related(
        "agent", "release", "organization", "requested_by_key"
    )
    pending = list(rows.filter(status=ActivationRequestStatus.PENDING).order_by("requested_at", "id"))
    decided = list(
        rows.exclude(status=ActivationRequestStatus.PENDING).order_by("-decided_at", "-id")[:RECENT_DECISIONS]
    )
    return {
        "pending": request_rows(request, pending),
        "decided": request_rows(request, decided),
        "one_person": organization.one_person_activation,
    }


def activation_panel(request, organization) -> dict:
    """The dashboard's panel: the pending activation requests (one query)."""
    pending = list(
        ActivationRequest.objects.filter(organization=organization, status=ActivationRequestStatus.PENDING)
        .select_related("agent", "release")
        .order_by("requested_at", "id")[:6]
    )
    return {"activation_pending": pending[:5], "activation_more": len(pending) > 5}


def agent_activation_context(request, agent) -> dict:
    """What the agent's page shows of activation: its releases to choose from, its pending request and
    whether the viewer may request (two queries)."""
    access = get_admin_access(request)
    releases = list(
        Release.objects.filter(agent=agent)
        .order_by("-number")
        .only("id", "number", "content_hash", "agent_id")
    )
    pending = (
        ActivationRequest.objects.filter(agent=agent, status=ActivationRequestStatus.PENDING)
        .select_related("agent", "release", "organization", "requested_by_key")
        .first()
    )
    return {
        "activation_releases": releases,
        "activation_pending": request_rows(request, [pending])[0] if pending else None,
        "can_request_activation": policy.allows(access, "release.request", agent),
        "approves_alone": agent.organization.one_person_activation
        and policy.allows(access, "release.approve"),
    }


# --- Decisions ----------------------------------------------------------------------------------


def _back(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("admin:approvals")


def _request_row(request, pk) -> ActivationRequest:
    return scoped_get(
        ActivationRequest.objects.select_related(
            "agent", "release", "organization", "requested_by", "requested_by_key"
        ),
        request,
        pk=pk,
    )


def _report(request, error, success: str) -> None:
    if error is None:
        messages.success(request, success)
    else:
        for line in validation_messages(error):
            messages.error(request, line)


def approve(model_admin, request, request_id):
    """POST: approve (admin or owner, not the requester unless one-person activation is on, a fresh
    second factor: the step-up page first), then the gates, then the release goes live."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    decision = policy.decide(get_admin_access(request), "release.approve")
    if not decision and decision.code != policy.STEP_UP_REQUIRED:
        raise PermissionDenied(decision.reason)  # the role; the second factor is asked below
    row = _request_row(request, request_id)
    blocked = activation.approval_refusal(row, request.user) if row.is_pending else None
    if blocked:
        messages.error(request, blocked)  # said before asking for a code that would not help
        return _back(request)
    page = gate(request, "release.approve", model_admin=model_admin)
    if page is not None:
        return page
    _, error = run_service(activation.activation_request_approve, request=row, actor=request.user)
    _report(request, error, f"Release {row.release.number} of “{row.agent.name}” is now active.")
    return _back(request)


def refuse(model_admin, request, request_id):
    """POST with ``reason``: refuse a pending request (admin or owner)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    model_admin.require(request, "release.refuse")
    row = _request_row(request, request_id)
    _, error = run_service(
        activation.activation_request_refuse,
        request=row,
        actor=request.user,
        reason=request.POST.get("reason", ""),
    )
    _report(
        request, error, f"The activation of release {row.release.number} of “{row.agent.name}” was refused."
    )
    return _back(request)


def cancel(model_admin, request, request_id):
    """POST: the requester withdraws a pending request."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    model_admin.require(request, "release.request")
    row = _request_row(request, request_id)
    _, error = run_service(activation.activation_request_cancel, request=row, actor=request.user)
    _report(
        request,
        error,
        f"Your request to activate release {row.release.number} of “{row.agent.name}” was cancelled.",
    )
    return _back(request)


def request_activation(model_admin, request, agent, *, release_number=None, notes: str = ""):
    """The agent page's "Request activation": the chosen (default newest) release; with one-person
    activation and an admin or owner, approved in the same step (the step-up page first). Returns the
    response to send."""
    access = get_admin_access(request)
    model_admin.require(request, "release.request", agent)
    alone = agent.organization.one_person_activation and policy.allows(access, "release.approve")
    if alone:
        page = gate(request, "release.approve", model_admin=model_admin)
        if page is not None:
            return page
    release = None
    if release_number:
        release = Release.objects.filter(agent=agent, number=release_number).first()
        if release is None:
            messages.error(request, f"This agent has no release {release_number}.")
            return redirect("admin:agents_agent_detail", agent_id=agent.pk)
    row, error = run_service(
        activation.activation_request_create, agent=agent, release=release, actor=request.user, notes=notes
    )
    if error is not None:
        _report(request, error, "")
    elif alone:
        _, error = run_service(activation.activation_request_approve, request=row, actor=request.user)
        _report(request, error, f"Release {row.release.number} of “{agent.name}” is now active.")
    else:
        messages.success(
            request,
            f"Activation of release {row.release.number} requested: another admin or owner approves it in "
            "the approval inbox.",
        )
    return redirect("admin:agents_agent_detail", agent_id=agent.pk)
