"""The agent's releases in the staff UI: the list (with "Create release"), a release's page, and the
diff between any two releases.

Routed by ``agents.admin.AgentAdmin.get_urls``. Creating a release is ``agents.services.release_create``
(audited); what a release holds is read with ``agents.release_diff.shown_snapshot`` (examples' client
identifiers in full for editors and above, masked for others) and compared with
``agents.release_diff.release_diff``, the same reading as the API's. Activation is not here: the agent's
page shows which release is active.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from agents import services as agent_services
from agents.models import Agent, Execution, Release
from agents.privacy import sees_every_identifier
from agents.release_diff import TEXT_FIELDS, release_diff, shown_snapshot, text_rows
from prisma_glow.admin.base import render_admin_page, run_service, validation_messages
from prisma_glow.admin.scoping import get_admin_access, scoped_get

#: Releases shown on the agent's page (the rest are on its releases page).
RECENT_RELEASES = 5


class ReleaseCreateForm(forms.Form):
    notes = forms.CharField(
        required=False,
        max_length=10_000,
        label="Release notes",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed and why. The release freezes the current persona, model, assignments "
        "and examples; it goes live only when activated.",
    )


class ReleaseDiffForm(forms.Form):
    a = forms.TypedChoiceField(coerce=int, label="From release")
    b = forms.TypedChoiceField(coerce=int, label="To release")

    def __init__(self, *args, numbers, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(n, f"Release {n}") for n in numbers]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("a") is not None and data.get("a") == data.get("b"):
            raise forms.ValidationError("Choose two different releases.")
        return data


def releases_with_runs(agent: Agent):
    """The agent's releases, newest first, each with its author and ``run_total`` (its executions),
    counted by a correlated subquery: one query whatever the number of releases."""
    runs = (
        Execution.objects.filter(release=OuterRef("pk"))
        .order_by()
        .values("release")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Release.objects.filter(agent=agent)
        .select_related("created_by", "persona")
        .annotate(run_total=Coalesce(Subquery(runs), 0))
        .order_by("-number")
    )


def executions_url(release: Release) -> str:
    """The executions list filtered to the runs of ``release``."""
    return reverse("admin:agents_execution_changelist") + f"?release__id__exact={release.pk}"


def release_label(execution: Execution) -> str:
    """What ran, for the executions list and page: "Release 3" linked to its page, "Draft (test)" for
    a test run of the draft, "—" for a run recorded before releases existed. Needs ``release`` loaded."""
    release = execution.release
    if release is not None:
        url = reverse("admin:agents_agent_release", args=[execution.agent_id, release.number])
        return format_html('<a href="{}" title="{}">Release {}</a>', url, release.short_hash, release.number)
    if execution.is_test:
        return format_html('<span class="pg-muted">{}</span>', "Draft (test)")
    return "—"


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _entries(snapshot: dict) -> dict:
    """The snapshot's assignment lists as the release page shows them: name, settings, definition."""
    hidden = {"id", "name", "organization_id", "owner_id"}
    return {
        "tools": [
            {
                "name": e["tool"].get("name", ""),
                "order": e.get("order"),
                "settings": _pretty(e.get("settings", {})),
                "definition": _pretty({k: v for k, v in e["tool"].items() if k not in hidden}),
            }
            for e in snapshot.get("tools", [])
        ],
        "knowledge": snapshot.get("knowledge", []),
        "guardrails": [
            {
                "name": e["guardrail"].get("name", ""),
                "order": e.get("order"),
                "definition": _pretty({k: v for k, v in e["guardrail"].items() if k not in hidden}),
            }
            for e in snapshot.get("guardrails", [])
        ],
    }


def release_panel(request, agent: Agent, model_admin) -> dict:
    """The agent page's releases section: the newest releases, the form of "Create release"."""
    recent = list(releases_with_runs(agent)[:RECENT_RELEASES])
    for release in recent:
        release.executions_url = executions_url(release)
    return {
        "recent_releases": recent,
        "release_form": ReleaseCreateForm(),
        "can_release": model_admin.allows(request, "release.add"),
    }


class ReleasePages:
    """Views bound to the AgentAdmin (for its options, rights and site)."""

    def __init__(self, model_admin):
        self.admin = model_admin

    def _agent(self, request, agent_id) -> Agent:
        return scoped_get(
            Agent.objects.select_related("organization", "active_release"), request, pk=agent_id
        )

    def _page(self, request, template, context, *, title):
        return render_admin_page(request, template, context, title=title, model_admin=self.admin)

    def _visible(self, request) -> bool:
        return sees_every_identifier(get_admin_access(request))

    def releases(self, request, agent_id):
        """The agent's releases, newest first, with "Create release" and a choice of two to compare."""
        self.admin.require(request, "release.view")
        agent = self._agent(request, agent_id)
        rows = list(releases_with_runs(agent))
        for release in rows:
            release.executions_url = executions_url(release)
        numbers = [r.number for r in rows]
        diff_form = ReleaseDiffForm(
            numbers=numbers,
            initial={"a": numbers[1] if len(numbers) > 1 else None, "b": numbers[0] if numbers else None},
        )
        context = {
            "agent": agent,
            "releases": rows,
            "diff_form": diff_form,
            "create_form": ReleaseCreateForm(),
            "can_create": self.admin.allows(request, "release.add"),
        }
        return self._page(request, "admin/agents/release/list.html", context, title=f"{agent.name}: releases")

    def create(self, request, agent_id):
        """POST: freeze the agent's draft as its next release."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self.admin.require(request, "release.add")
        agent = self._agent(request, agent_id)
        form = ReleaseCreateForm(request.POST)
        if not form.is_valid():
            for line in form.errors.get("notes", []):
                messages.error(request, f"Release notes: {line}")
            return redirect("admin:agents_agent_releases", agent_id=agent.pk)
        release, error = run_service(
            agent_services.release_create, agent=agent, actor=request.user, notes=form.cleaned_data["notes"]
        )
        if error is not None:
            for line in validation_messages(error):
                messages.error(request, line)
            back = "agents_agent_detail" if request.POST.get("next") == "agent" else "agents_agent_releases"
            return redirect(f"admin:{back}", agent_id=agent.pk)
        messages.success(
            request,
            f"Release {release.number} of “{agent.name}” was created. It goes live when it is activated.",
        )
        return redirect("admin:agents_agent_release", agent_id=agent.pk, number=release.number)

    def detail(self, request, agent_id, number):
        """One release: its content, readable, and the executions that ran it."""
        self.admin.require(request, "release.view")
        agent = self._agent(request, agent_id)
        release = scoped_get(releases_with_runs(agent), request, number=number)
        snapshot = shown_snapshot(release, visible=self._visible(request))
        context = {
            "agent": agent,
            "release": release,
            "snapshot": snapshot,
            "persona": snapshot.get("persona", {}),
            **_entries(snapshot),
            "executions_url": executions_url(release),
            "is_active": agent.active_release_id == release.pk,
        }
        return self._page(
            request, "admin/agents/release/detail.html", context, title=f"{agent.name}: release {number}"
        )

    def diff(self, request, agent_id):
        """Two releases (``?a=&b=``) compared field by field; prose word by word, side by side."""
        self.admin.require(request, "release.view")
        agent = self._agent(request, agent_id)
        by_number = {r.number: r for r in Release.objects.filter(agent=agent).select_related("created_by")}
        numbers = sorted(by_number, reverse=True)
        form = ReleaseDiffForm(
            request.GET if "a" in request.GET or "b" in request.GET else None,
            numbers=numbers,
            initial={"a": numbers[1] if len(numbers) > 1 else None, "b": numbers[0] if numbers else None},
        )
        diff = None
        if form.is_bound and form.is_valid():
            old, new = by_number[form.cleaned_data["a"]], by_number[form.cleaned_data["b"]]
            visible = self._visible(request)
            diff = release_diff(shown_snapshot(old, visible=visible), shown_snapshot(new, visible=visible))
            diff["old"], diff["new"] = old, new
            diff["persona_rows"] = [
                {
                    "label": change["field"].replace("_", " ").capitalize(),
                    "text": change["field"] in TEXT_FIELDS,
                    "rows": text_rows(str(change["before"] or ""), str(change["after"] or ""))
                    if change["field"] in TEXT_FIELDS
                    else None,
                    **change,
                }
                # The prose (the prompt) first: what a reviewer reads; then the settings A→Z.
                for change in sorted(
                    diff["persona"], key=lambda c: (c["field"] not in TEXT_FIELDS, c["field"])
                )
            ]
            for kind in ("tools", "knowledge", "guardrails", "examples"):
                for entry in diff[kind]["changed"]:
                    for change in entry["changes"]:
                        change["before_text"] = _shown(change["before"])
                        change["after_text"] = _shown(change["after"])
            for key in ("provider", "model"):
                if diff[key]:
                    diff[key]["before_text"] = _shown(diff[key]["before"])
                    diff[key]["after_text"] = _shown(diff[key]["after"])
            for change in diff["agent"]:
                change["before_text"], change["after_text"] = (
                    _shown(change["before"]),
                    _shown(change["after"]),
                )
        context = {"agent": agent, "form": form, "diff": diff, "has_two": len(numbers) > 1}
        response = self._page(
            request, "admin/agents/release/diff.html", context, title=f"{agent.name}: compare releases"
        )
        if form.is_bound and form.errors:
            response.status_code = 400
        return response


def _shown(value) -> str:
    """A value of a diff as text: strings as they are, the rest as JSON; absent as "—"."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return _pretty(value)
