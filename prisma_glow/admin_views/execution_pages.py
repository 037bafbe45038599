"""An execution's page: summary, input and answer, and the timeline of its steps."""

from __future__ import annotations

from django.contrib.admin.utils import unquote

from agents.models import Execution
from prisma_glow.admin_views.base import render_admin_page
from prisma_glow.admin_views.scoping import scoped_get


def execution_detail(model_admin, request, object_id):
    """Read-only trace of one execution; another organisation's execution answers 404."""
    execution = scoped_get(
        Execution.objects.select_related("agent", "persona", "provider", "actor_user", "actor_api_key"),
        request,
        pk=unquote(str(object_id)),
    )
    steps = list(execution.steps.order_by("ordinal"))
    feedback = list(execution.feedback.select_related("user").order_by("-created_at"))
    total_ms = sum(step.duration_ms for step in steps) or 0
    for step in steps:
        step.share = round(100 * step.duration_ms / total_ms) if total_ms else 0
    context = {
        "execution": execution,
        "steps": steps,
        "feedback": feedback,
        "steps_ms": total_ms,
        "original": execution,
    }
    return render_admin_page(
        request,
        "admin/agents/execution/detail.html",
        context,
        title=f"Execution #{execution.pk} — {execution.agent.name}",
        model_admin=model_admin,
    )
