"""An execution's page: summary, input and answer, the timeline of its steps, and its feedback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize

from agents import services
from agents.admin.releases import release_label
from agents.admin.replay import replay_form
from agents.models import Execution, Rating, StepKind, StepStatus
from agents.privacy import identifier_mapping, may_see_identifiers, shown_data, shown_text
from prisma_glow.admin.base import add_errors_to_form, render_admin_page, run_service
from prisma_glow.admin.scoping import get_admin_access, scoped_get


class FeedbackForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(Rating.UP, "Good answer"), (Rating.DOWN, "Needs correction")],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    correction = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="What the answer should have been. With “Needs correction” it is proposed as a learning example.",
    )


def _step_note(step) -> str:
    """What a retrieval guardrail did to the passages, in words: ``dropped`` / ``flagged`` steps are
    not a blocked run, and the timeline says so."""
    if step.status not in (StepStatus.DROPPED, StepStatus.FLAGGED):
        return ""
    output = step.output if isinstance(step.output, dict) else {}
    stage = step.input.get("stage") if isinstance(step.input, dict) else None
    if step.kind == StepKind.GUARDRAIL and stage == "input":
        return "the input was sent as typed and flagged (warn); the run went on."
    if step.kind == StepKind.RETRIEVAL:
        dropped = output.get("dropped") if isinstance(output.get("dropped"), list) else []
        passages = output.get("passages") if isinstance(output.get("passages"), list) else []
        flagged = sum(1 for p in passages if isinstance(p, dict) and p.get("flagged"))
    else:
        hits = len(output.get("passages") or []) if isinstance(output.get("passages"), list) else 0
        dropped, flagged = ([None] * hits, 0) if step.status == StepStatus.DROPPED else ([], hits)
    parts = []
    if dropped:
        parts.append(f"{len(dropped)} passage{pluralize(len(dropped))} withheld from the model")
    if flagged:
        parts.append(f"{flagged} passage{pluralize(flagged)} flagged (tools withheld)")
    return "; ".join(parts) + "; the run went on." if parts else ""


#: Actions other apps add to an execution's page (apps above agents, which agents may not import, e.g.
#: evaluations' "Save as test case"): ``(template, context)``; ``context(request, execution, visible)``
#: returns the template's context, or None to show nothing to this person.
EXECUTION_ACTIONS: list[tuple[str, Callable[[Any, Execution, bool], dict | None]]] = []


def register_execution_action(
    *, template: str, context: Callable[[Any, Execution, bool], dict | None]
) -> None:
    """Add an action (a template included in a panel) to every execution's page."""
    EXECUTION_ACTIONS.append((template, context))


def execution_actions(request, execution, visible: bool) -> list[dict]:
    """The registered actions this person is shown, each ``{"template", "context"}``."""
    shown = []
    for template, context in EXECUTION_ACTIONS:
        values = context(request, execution, visible)
        if values is not None:
            shown.append({"template": template, "context": values})
    return shown


def execution_detail(model_admin, request, object_id):
    """Read-only trace of one execution, with a feedback form for editors; another organisation's
    execution answers 404."""
    execution = scoped_get(
        Execution.objects.select_related(
            "agent", "persona", "provider", "actor_user", "actor_api_key", "release"
        ),
        request,
        pk=unquote(str(object_id)),
    )
    can_write = model_admin.allows(request, "execution.feedback", execution)
    form = FeedbackForm()
    status = 200
    if request.method == "POST":
        model_admin.require(request, "execution.feedback", execution)
        form = FeedbackForm(request.POST)
        if form.is_valid():
            _, error = run_service(
                services.feedback_create, execution=execution, actor=request.user, **form.cleaned_data
            )
            if error is None:
                messages.success(request, "Thank you: the feedback was recorded.")
                return redirect(request.path)
            add_errors_to_form(form, error)
        status = 400
    steps = list(execution.steps.order_by("ordinal"))
    feedback = list(execution.feedback.select_related("user").order_by("-created_at"))
    visible = may_see_identifiers(get_admin_access(request), execution, opened_alone=True, user=request.user)
    if not visible:
        _mask(execution, steps, feedback)
    total_ms = sum(step.duration_ms for step in steps) or 0
    for step in steps:
        step.share = round(100 * step.duration_ms / total_ms) if total_ms else 0
        step.note = _step_note(step)
    context = {
        "execution": execution,
        "steps": steps,
        "feedback": feedback,
        "steps_ms": total_ms,
        "feedback_form": form,
        "can_write": can_write,
        "identifiers_masked": not visible,
        "release_label": release_label(execution),
        # Replay and evidence (agents.admin.replay): the buttons a member may use.
        "can_replay": model_admin.allows(request, "execution.replay", execution) and visible,
        "replay_form": replay_form(execution),
        "execution_actions": execution_actions(request, execution, visible),
    }
    response = render_admin_page(
        request,
        "admin/agents/execution/detail.html",
        context,
        title=f"Execution #{execution.pk} — {execution.agent.name}",
        model_admin=model_admin,
    )
    response.status_code = status
    return response


def _mask(execution, steps, feedback) -> None:
    """The page as a member who may not see client identifiers sees it (``agents.privacy``): every
    identifier of the input, the answer, the error, the citations, the trace and the feedback masked,
    on the objects in memory (nothing is saved)."""
    mapping = identifier_mapping(execution)
    for name in ("input", "output", "error"):
        setattr(
            execution, name, shown_text(execution, getattr(execution, name), visible=False, mapping=mapping)
        )
    execution.citations = shown_data(execution, execution.citations, visible=False)
    for step in steps:
        step.input = shown_data(execution, step.input, visible=False)
        step.output = shown_data(execution, step.output, visible=False)
    for item in feedback:
        item.comment = shown_text(execution, item.comment, visible=False, mapping=mapping)
        item.correction = shown_text(execution, item.correction, visible=False, mapping=mapping)
