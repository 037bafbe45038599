"""The console's compare: one question asked of two releases of an agent (or a release and the draft),
answers side by side (``agents.comparison``).

Both runs are test runs (``is_test``, source ``console``) of the member who asks, each pinned to its
release (the draft: the live configuration), as of the same day; they are recorded like any console run
and linked from the comparison. Every role sees the page; asking needs ``agent.execute`` (editors and
above). Another organisation's agent answers 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import reverse

from agents.comparison import Side, compare
from agents.console.forms import MESSAGE_MAX_LENGTH
from agents.evidence import evidence_queryset
from agents.models import Agent, ExecutionSource, Release
from agents.runtime import AgentNotRunnable, execute
from prisma_glow import policy
from prisma_glow.admin.base import admin_require
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.exceptions import BudgetExceeded

#: The choice that runs the draft (the live configuration) instead of a release.
DRAFT = "draft"


class CompareForm(forms.Form):
    """A question, two configurations of the agent to ask (a release number or the draft), a day."""

    left = forms.ChoiceField(label="Left")
    right = forms.ChoiceField(label="Right")
    message = forms.CharField(
        max_length=MESSAGE_MAX_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask both the same question…"}),
        error_messages={"required": "Type a question to ask both."},
    )
    as_of = forms.DateField(
        required=False,
        label="As of",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Search the knowledge as of this day (blank: today).",
    )

    def __init__(self, *args, agent: Agent, **kwargs):
        super().__init__(*args, **kwargs)
        self.releases = {str(r.number): r for r in Release.objects.filter(agent=agent).order_by("-number")}
        choices = [(DRAFT, "Draft (the live configuration)")] + [
            (
                number,
                f"Release {number} · {r.short_hash}{' (active)' if r.pk == agent.active_release_id else ''}",
            )
            for number, r in self.releases.items()
        ]
        for name in ("left", "right"):
            self.fields[name].choices = choices
            self.fields[name].error_messages["invalid_choice"] = (
                "Choose the draft or one of this agent's releases."
            )
        active = agent.active_release.number if agent.active_release_id else None
        self.fields["left"].initial = str(active) if active else DRAFT
        self.fields["right"].initial = DRAFT

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError("Type a question to ask both.", code="required")
        return message

    def release(self, name: str) -> Release | None:
        value = self.cleaned_data[name]
        return None if value == DRAFT else self.releases[value]


def _label(release: Release | None) -> str:
    return "Draft" if release is None else f"Release {release.number}"


def compare_view(request, agent_id: int):
    """GET: the form; POST: both runs and their comparison (400 with the form's errors)."""
    access = get_admin_access(request)
    admin_require(request, "agent.view")
    agent = scoped_get(Agent.objects.select_related("organization", "active_release"), request, pk=agent_id)
    form = CompareForm(request.POST or None, agent=agent)
    result, status, problem = None, 200, ""
    if request.method == "POST":
        admin_require(request, "agent.execute")
        if form.is_valid():
            runs = []
            try:
                for name in ("left", "right"):
                    release = form.release(name)
                    runs.append(
                        (
                            release,
                            execute(
                                agent,
                                form.cleaned_data["message"],
                                actor=request.user,
                                source=ExecutionSource.CONSOLE,
                                is_test=True,
                                release=release,
                                as_of=form.cleaned_data["as_of"],
                            ),
                        )
                    )
            except (AgentNotRunnable, BudgetExceeded, ValidationError) as exc:
                problem = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                status = 409 if isinstance(exc, AgentNotRunnable) else 400
            else:
                executions = {e.pk: e for e in evidence_queryset().filter(pk__in=[e.pk for _, e in runs])}

                def side(release, execution):
                    return Side(
                        title=f"{_label(release)} · execution #{execution.pk}",
                        execution=executions[execution.pk],
                        url=reverse("admin:agents_execution_change", args=[execution.pk]),
                    )

                # The member asked both questions: they are the requester of both runs.
                result = compare(
                    side(*runs[0]),
                    side(*runs[1]),
                    left_visible=True,
                    right_visible=True,
                    currency=agent.organization.currency,
                )
        else:
            status = 400
    context = {
        **admin.site.each_context(request),
        "title": f"Compare releases: {agent.name}",
        "agent": agent,
        "form": form,
        "comparison": result,
        "problem": problem,
        "can_run": policy.allows(access, "agent.execute"),
    }
    return TemplateResponse(request, "agents/console/compare.html", context, status=status)
