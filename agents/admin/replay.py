"""An execution's replay, its comparison with the original, and its evidence pack, in the staff UI.

Each is wrapped by ``ExecutionAdmin.get_urls`` (POST only for ``replay``, GET for the others).

- ``replay`` (POST, from the execution's page): runs the execution again against the chosen release
  (``agents.replay``) and opens the comparison; a refusal comes back as a message on the page.
- ``comparison``: a replay beside the execution it replays (``agents.comparison``).
- ``evidence``: the evidence pack (``agents.evidence``) as a JSON download, or with ``?format=html`` the
  printable page; identifiers masked as the execution's page masks them.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse

from agents.comparison import Side, compare
from agents.evidence import evidence_pack, evidence_queryset
from agents.models import Execution, ExecutionSource, Release
from agents.privacy import may_see_identifiers
from agents.replay import execution_replay
from prisma_glow.admin.base import render_admin_page, run_service, validation_messages
from prisma_glow.admin.scoping import get_admin_access, scoped_get


class ReplayForm(forms.Form):
    """The release a replay runs: one of the execution's agent's (blank: the active release)."""

    release = forms.ModelChoiceField(
        queryset=Release.objects.none(),
        required=False,
        empty_label="The active release",
        help_text="The run's input is asked again, as of its day, of this release, as a test run.",
    )

    def __init__(self, *args, execution: Execution, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["release"]
        field.queryset = Release.objects.filter(agent_id=execution.agent_id).order_by("-number")
        field.label_from_instance = lambda r: (
            f"Release {r.number} · {r.short_hash}" + (f" — {r.notes[:60]}" if r.notes else "")
        )
        field.error_messages["invalid_choice"] = "Choose one of this agent's releases."


def replay_form(execution: Execution) -> ReplayForm:
    return ReplayForm(execution=execution)


def _execution(request, execution_id, queryset=None) -> Execution:
    return scoped_get(
        queryset if queryset is not None else Execution.objects.select_related("agent", "release"),
        request,
        pk=execution_id,
    )


def replay(model_admin, request, execution_id):
    """Run the execution again against the release chosen (default: the active one)."""
    execution = _execution(request, execution_id)
    model_admin.require(request, "execution.replay", execution)
    back = reverse("admin:agents_execution_change", args=[execution.pk])
    form = ReplayForm(request.POST, execution=execution)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    # A refusal (no active release, a budget, not allowed to see the run's identifiers) is a message.
    result, error = run_service(
        execution_replay,
        execution=execution,
        actor=request.user,
        viewer=get_admin_access(request),
        user=request.user,
        release=form.cleaned_data["release"],
        source=ExecutionSource.CONSOLE,
    )
    if error is not None:
        for line in validation_messages(error):
            messages.error(request, line)
        return redirect(back)
    messages.success(request, f"Replayed as execution #{result.pk} ({result.get_status_display().lower()}).")
    return redirect("admin:agents_execution_comparison", execution_id=result.pk)


def comparison(model_admin, request, execution_id):
    """A replay beside the execution it replays (another organisation's: 404)."""
    queryset = evidence_queryset()
    replay = _execution(request, execution_id, queryset)
    if replay.replay_of_id is None:
        messages.info(request, "This execution is not a replay: replay it to compare.")
        return redirect("admin:agents_execution_change", object_id=replay.pk)
    original = _execution(request, replay.replay_of_id, queryset)
    access = get_admin_access(request)

    def visible(execution):
        return may_see_identifiers(access, execution, opened_alone=True, user=request.user)

    def side(execution, title):
        url = reverse("admin:agents_execution_change", args=[execution.pk])
        return Side(title=f"{title} #{execution.pk}", execution=execution, url=url)

    result = compare(
        side(original, "Original"),
        side(replay, "Replay"),
        left_visible=visible(original),
        right_visible=visible(replay),
        currency=get_admin_access(request).organization.currency,
    )
    return render_admin_page(
        request,
        "admin/agents/execution/comparison.html",
        {"comparison": result, "original": original, "replay": replay},
        title=f"Replay #{replay.pk} of execution #{original.pk} — {replay.agent.name}",
        model_admin=model_admin,
    )


def evidence(model_admin, request, execution_id):
    """The evidence pack: a JSON download, or ``?format=html`` the printable page."""
    execution = _execution(request, execution_id, evidence_queryset())
    if not model_admin.allows(request, "execution.view", execution):
        raise PermissionDenied
    visible = may_see_identifiers(get_admin_access(request), execution, opened_alone=True, user=request.user)
    pack = evidence_pack(execution=execution, visible=visible, generated_for=request.user.get_username())
    if request.GET.get("format") == "html":
        return HttpResponse(render_to_string("agents/evidence.html", {"pack": pack}, request=request))
    response = HttpResponse(
        json.dumps(pack, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="evidence-execution-{execution.pk}.json"'
    return response
