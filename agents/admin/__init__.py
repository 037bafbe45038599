"""Staff pages for agents, executions, providers and the learning loop.

Lists and forms are Django admin ModelAdmins scoped to the organisation (this module); the agent's
own pages (wizard, detail, persona versions and editor, assignments) are in ``pages`` with their
forms in ``forms``, the execution trace in ``executions``, the dashboard panel in ``dashboard``, a
provider's "Test connection" in ``providers`` and list filters in ``filters``, all routed here
(``get_urls()``). This module also gives the site the dashboard panel and mounts the test console
(``agents.console``) at /admin/console/. Every write goes through ``agents.services`` /
``personas.services``.
"""

from __future__ import annotations

import csv
from functools import partial

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import include, path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET, require_POST

from agents import activation, services
from agents.admin import activation_pages as admin_activation
from agents.admin import approvals
from agents.admin import providers as provider_pages
from agents.admin import replay as replay_pages
from agents.admin.budgets import budgets_panel, consumption, limits_nothing_warning
from agents.admin.dashboard import dashboard_panel
from agents.admin.executions import execution_detail
from agents.admin.filters import OrganizationAgentFilter
from agents.admin.forms import AgentForm, BudgetForm, LearningExampleForm, ModelProviderForm
from agents.admin.pages import AgentPages
from agents.admin.releases import ReleasePages, release_label
from agents.models import (
    Agent,
    Budget,
    Conversation,
    Execution,
    Feedback,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
)
from agents.privacy import identifier_mapping, may_see_identifiers, sees_every_identifier, shown_text
from agents.selectors import budget_limits_nothing_for, budget_unpriced_agents, budgets_with_usage
from prisma_glow import policy
from prisma_glow.admin.base import OrganizationScopedAdmin, adopt
from prisma_glow.admin.filters import OwnerFilter
from prisma_glow.admin.scoping import get_admin_access
from prisma_glow.display import format_duration_ms


def badge(value: str, label: str | None = None) -> str:
    return format_html('<span class="pg-badge pg-badge-{}">{}</span>', value, label or value)


# --- Agents -----------------------------------------------------------------------------------


@admin.register(Agent)
class AgentAdmin(OrganizationScopedAdmin):
    """The agent registry: search, filters, sortable columns, status badges and bulk actions."""

    form = AgentForm
    list_display = ["name_link", "type", "status_badge", "owner", "provider", "run_count", "updated_at"]
    list_display_links = None
    list_filter = ["type", "status", OwnerFilter]
    search_fields = ["name", "slug", "description"]
    list_select_related = ["owner", "provider"]
    ordering = ["name"]
    actions = ["request_activation_selected", "deprecate_selected", "export_csv"]
    action_operations = {"deprecate_selected": "agent.deprecate"}
    policy_resource = "agent"
    change_form_template = "admin/agents/agent/change_form.html"
    change_list_template = "admin/agents/agent/change_list.html"
    # The settings page. No status field: the status follows releases and activation (issue 17).
    fieldsets = [
        (None, {"fields": ["name", "slug", "type", "status_explained", "description", "owner"]}),
        (
            "Model",
            {
                "fields": ["provider", "model"],
                "description": "Which model answers. The persona's version may name another model "
                "(its “model override”).",
            },
        ),
        ("Limits", {"fields": ["max_tool_rounds", "timeout_seconds"]}),
    ]
    readonly_fields = ["status_explained"]

    def get_queryset(self, request):
        # A correlated count (served by the executions' (agent, created_at) index) computed for the
        # rows of the page, rather than a GROUP BY over every execution of the organisation.
        runs = (
            Execution.objects.filter(agent=OuterRef("pk"))
            .order_by()
            .values("agent")
            .annotate(n=Count("id"))
            .values("n")
        )
        return super().get_queryset(request).annotate(run_total=Coalesce(Subquery(runs), 0))

    @admin.display(description="Name", ordering="name")
    def name_link(self, obj):
        url = reverse("admin:agents_agent_detail", args=[obj.pk])
        return format_html(
            '<a href="{}"><strong>{}</strong></a><br><span class="pg-muted">{}</span>',
            url,
            obj.name,
            obj.slug,
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Runs", ordering="run_total")
    def run_count(self, obj):
        return obj.run_total

    @admin.display(description="Status")
    def status_explained(self, obj):
        """The status with what it means and where it changes: never a free choice on this page."""
        if obj is None or obj.pk is None:
            return "—"
        release = obj.active_release.number if obj.active_release_id else None
        meaning = {
            "draft": "Not available to clients yet: create a release and request its activation.",
            "active": f"Clients run release {release}. " if release else "Clients can run it. ",
            "deprecated": "Retired: clients can no longer run it. Activating a release brings it back.",
        }.get(obj.status, "")
        if obj.status == "active":
            meaning += "To change what runs, create a release and request its activation."
        return format_html(
            '{} {} <a href="{}">Releases and activation</a> (the status changes there, through the '
            "approval of an activation request, never on this page).",
            badge(obj.status, obj.get_status_display()),
            meaning,
            reverse("admin:agents_agent_detail", args=[obj.pk]),
        )

    # --- bulk actions ----------------------------------------------------------------------
    @admin.action(description="Request activation of the selected agents' newest releases")
    def request_activation_selected(self, request, queryset):
        # A request each (four eyes: another admin or owner approves them in the approval inbox).
        self.require(request, "release.request")
        self.run_action(
            request,
            queryset,
            lambda a: activation.activation_request_create(agent=a, actor=request.user),
            verb="requested for activation (approve them in the approval inbox)",
        )

    @admin.action(description="Deprecate selected agents")
    def deprecate_selected(self, request, queryset):
        self.require(request, "agent.deprecate")
        self.run_action(
            request,
            queryset,
            lambda a: services.agent_deprecate(agent=a, actor=request.user),
            verb="deprecated",
        )

    @admin.action(description="Export selected agents as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="agents.csv"'
        writer = csv.writer(response)
        writer.writerow(
            ["id", "name", "slug", "type", "status", "owner", "provider", "model", "runs", "updated_at"]
        )
        for agent in queryset.select_related("owner", "provider"):
            writer.writerow(
                [
                    agent.pk,
                    agent.name,
                    agent.slug,
                    agent.type,
                    agent.status,
                    agent.owner.get_username() if agent.owner else "",
                    agent.provider.name if agent.provider else "",
                    agent.model,
                    getattr(agent, "run_total", ""),
                    agent.updated_at.isoformat(),
                ]
            )
        return response

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        for name, operation in {
            **self.action_operations,
            "request_activation_selected": "release.request",
        }.items():
            if not self.allows(request, operation):
                actions.pop(name, None)
        return actions

    # --- writes ------------------------------------------------------------------------------
    def add_view(self, request, form_url="", extra_context=None):
        # New agents are made with the wizard (persona, tools, knowledge, guardrails in one go).
        self.require(request, "agent.add")
        return HttpResponseRedirect(reverse("admin:agents_agent_wizard"))

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name] for name in form.changed_data if name in AgentForm.Meta.fields
        }
        updated = self.call_service(services.agent_update, agent=obj, actor=request.user, **fields)
        adopt(obj, updated)

    def delete_model(self, request, obj):
        self.call_service(services.agent_delete, agent=obj, actor=request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        provider = form.base_fields.get("provider")
        if provider is not None and hasattr(provider.widget, "can_add_related"):
            # Providers are managed on their own pages (admins), not from an agent's settings.
            widget = provider.widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # New agents come from the wizard; "Save" leads back to the agent's overview.
        context.update(show_save_and_add_another=False, show_save_and_continue=False)
        if obj is not None and obj.pk:
            context["title"] = "Agent settings"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_change(self, request, obj):
        if "_continue" not in request.POST and "_addanother" not in request.POST:
            self.message_user(request, f"The agent “{obj}” was saved.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:agents_agent_detail", args=[obj.pk]))
        return super().response_change(request, obj)

    # --- custom pages ------------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view
        pages = AgentPages(self)
        releases = ReleasePages(self)
        custom = [
            path("wizard/", view(pages.wizard_start), name="agents_agent_wizard"),
            path("wizard/reset/", view(pages.wizard_reset), name="agents_agent_wizard_reset"),
            path("wizard/<slug:step>/", view(pages.wizard_step), name="agents_agent_wizard_step"),
            path("<int:agent_id>/overview/", view(pages.detail), name="agents_agent_detail"),
            path(
                "<int:agent_id>/lifecycle/<slug:transition>/",
                view(pages.lifecycle),
                name="agents_agent_lifecycle",
            ),
            path("<int:agent_id>/clone/", view(pages.clone), name="agents_agent_clone"),
            path(
                "activation-requests/<int:request_id>/approve/",
                view(partial(admin_activation.approve, self)),
                name="agents_activation_approve",
            ),
            path(
                "activation-requests/<int:request_id>/refuse/",
                view(partial(admin_activation.refuse, self)),
                name="agents_activation_refuse",
            ),
            path(
                "activation-requests/<int:request_id>/cancel/",
                view(partial(admin_activation.cancel, self)),
                name="agents_activation_cancel",
            ),
            path("<int:agent_id>/personas/", view(pages.personas), name="agents_agent_personas"),
            path("<int:agent_id>/personas/new/", view(pages.persona_edit), name="agents_agent_persona_new"),
            path(
                "<int:agent_id>/personas/preview/",
                view(pages.persona_preview),
                name="agents_agent_persona_preview",
            ),
            path(
                "<int:agent_id>/personas/<int:persona_id>/edit/",
                view(pages.persona_edit),
                name="agents_agent_persona_edit",
            ),
            path(
                "<int:agent_id>/personas/<int:persona_id>/activate/",
                view(pages.persona_activate),
                name="agents_agent_persona_activate",
            ),
            path(
                "<int:agent_id>/assignments/<slug:kind>/",
                view(pages.assignments),
                name="agents_agent_assignments",
            ),
            path("<int:agent_id>/releases/", view(releases.releases), name="agents_agent_releases"),
            path("<int:agent_id>/releases/new/", view(releases.create), name="agents_agent_release_create"),
            path("<int:agent_id>/releases/diff/", view(releases.diff), name="agents_agent_release_diff"),
            path("<int:agent_id>/releases/<int:number>/", view(releases.detail), name="agents_agent_release"),
        ]
        return custom + super().get_urls()


# --- Executions -------------------------------------------------------------------------------


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Records written by the runtime: readable by every member, changed by nobody here."""

    policy_resource = "execution"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    """Executions with filters (agent, status, source, date) and a trace page per execution."""

    list_display = [
        "created_at",
        "agent",
        "status_badge",
        "source",
        "release_link",
        "short_input",
        "latency",
        "cost",
    ]
    list_display_links = ["created_at"]
    list_filter = [
        OrganizationAgentFilter,
        "status",
        "source",
        "is_test",
        ("created_at", admin.DateFieldListFilter),
    ]
    date_hierarchy = "created_at"
    search_fields = ["input", "output", "error"]
    search_help_text = (
        "Editors search the inputs, answers and errors; other roles search the agent's name only "
        "(the texts hold client identifiers, which a search would reveal)."
    )
    list_select_related = ["agent", "release"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    @admin.display(description="Release")
    def release_link(self, obj):
        return release_label(obj)

    def get_search_fields(self, request):
        # A search matching inside a value shown masked would rebuild it (agents.privacy).
        if sees_every_identifier(get_admin_access(request)):
            return self.search_fields
        return ["agent__name"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Input")
    def short_input(self, obj):
        # A list: client identifiers masked whoever looks (agents.privacy).
        text = shown_text(obj, obj.input, visible=False)
        return (text[:80] + "…") if len(text) > 80 else text

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, obj):
        return format_duration_ms(obj.latency_ms)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return execution_detail(self, request, object_id)

    def get_urls(self):
        view = self.admin_site.admin_view

        def page(func, allowed=require_GET):
            return view(allowed(lambda request, execution_id: func(self, request, execution_id)))

        custom = [
            path(
                "<int:execution_id>/replay/",
                page(replay_pages.replay, require_POST),
                name="agents_execution_replay",
            ),
            path(
                "<int:execution_id>/comparison/",
                page(replay_pages.comparison),
                name="agents_execution_comparison",
            ),
            path(
                "<int:execution_id>/evidence/", page(replay_pages.evidence), name="agents_execution_evidence"
            ),
        ]
        return custom + super().get_urls()


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """Conversations with the agents, read like their executions: each turn links to its trace. The
    title masks client identifiers (``conversation_title``); the turns' texts are on their pages."""

    list_display = ["created_at", "title", "agent", "turn_count", "started_by"]
    list_display_links = ["created_at", "title"]
    list_filter = [OrganizationAgentFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["title"]
    list_select_related = ["agent", "started_by_user", "started_by_api_key"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = ["title", "agent", "started_by", "created_at", "turn_list"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(turn_total=Count("turns"))

    @admin.display(description="Turns", ordering="turn_total")
    def turn_count(self, obj):
        return obj.turn_total

    @admin.display(description="Started by")
    def started_by(self, obj):
        if obj.started_by_api_key_id:
            return f"API key {obj.started_by_api_key.name}"
        return obj.started_by_user or "—"

    @admin.display(description="Turns")
    def turn_list(self, obj):
        turns = obj.turns.order_by("turn").only("pk", "turn", "status", "created_at")
        items = format_html_join(
            "",
            '<li><a href="{}">Turn {}</a> <span class="pg-badge pg-badge-{}">{}</span> {}</li>',
            (
                (
                    reverse("admin:agents_execution_change", args=[t.pk]),
                    t.turn,
                    t.status,
                    t.get_status_display(),
                    t.created_at.strftime("%Y-%m-%d %H:%M"),
                )
                for t in turns
            ),
        )
        return format_html("<ol>{}</ol>", items) if items else "—"


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    """Thumbs up and down from the console and the API, with corrections."""

    list_display = [
        "created_at",
        "rating_badge",
        "execution_link",
        "masked_comment",
        "masked_correction",
        "user",
    ]
    list_display_links = None
    list_filter = ["rating"]
    search_fields = ["comment", "correction"]
    search_help_text = (
        "Editors search the comments and corrections; other roles search the agent's name only "
        "(the texts hold client identifiers, which a search would reveal)."
    )
    list_select_related = ["execution__agent", "user"]

    def get_search_fields(self, request):
        # A search matching inside a value shown masked would rebuild it (agents.privacy).
        if sees_every_identifier(get_admin_access(request)):
            return self.search_fields
        return ["execution__agent__name"]

    # A list: client identifiers masked whoever looks (agents.privacy), with those the run knows.
    @admin.display(description="Comment")
    def masked_comment(self, obj):
        return shown_text(obj.execution, obj.comment, visible=False)

    @admin.display(description="Correction")
    def masked_correction(self, obj):
        return shown_text(obj.execution, obj.correction, visible=False)

    @admin.display(description="Rating", ordering="rating")
    def rating_badge(self, obj):
        return badge("up" if obj.rating > 0 else "down", obj.get_rating_display())

    @admin.display(description="Execution")
    def execution_link(self, obj):
        url = reverse("admin:agents_execution_change", args=[obj.execution_id])
        return format_html('<a href="{}">{} #{}</a>', url, obj.execution.agent.name, obj.execution_id)


@admin.register(LearningExample)
class LearningExampleAdmin(OrganizationScopedAdmin):
    """Few-shot examples: proposed from corrections or written here; approve or reject them."""

    form = LearningExampleForm
    list_display = ["short_input", "agent", "status_badge", "source", "created_by", "created_at"]
    list_filter = ["status", OrganizationAgentFilter]
    search_fields = ["input", "output"]
    list_select_related = ["agent", "created_by"]
    actions = ["approve_selected", "reject_selected"]
    policy_resource = "learning_example"

    @admin.display(description="Input")
    def short_input(self, obj):
        # A list: client identifiers masked whoever looks (agents.privacy).
        text = shown_text(obj, obj.input, visible=False)
        return (text[:90] + "…") if len(text) > 90 else text

    def get_object(self, request, object_id, from_field=None):
        """The example as this member sees it on its own page: the real values for an editor (or
        above) and its author, masked for everyone else (in memory; the service saves edits redacted
        again)."""
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            visible = may_see_identifiers(
                get_admin_access(request), obj, opened_alone=True, user=request.user
            )
            mapping = identifier_mapping(obj)
            obj.input = shown_text(obj, obj.input, visible=visible, mapping=mapping)
            obj.output = shown_text(obj, obj.output, visible=visible, mapping=mapping)
        return obj

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="From")
    def source(self, obj):
        return "feedback" if obj.source_feedback_id else "written"

    def get_readonly_fields(self, request, obj=None):
        return ["agent"] if obj is not None else []

    @admin.action(description="Approve selected examples")
    def approve_selected(self, request, queryset):
        self.require(request, "learning_example.change")
        self.run_action(
            request,
            queryset,
            lambda e: services.learning_example_approve(example=e, actor=request.user),
            verb="approved",
        )

    @admin.action(description="Reject selected examples")
    def reject_selected(self, request, queryset):
        self.require(request, "learning_example.change")
        self.run_action(
            request,
            queryset,
            lambda e: services.learning_example_reject(example=e, actor=request.user),
            verb="rejected",
        )

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location=action_location)
        if not self.allows(request, "learning_example.change"):
            return {}
        return actions

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {k: data[k] for k in ("input", "output") if k in form.changed_data}
            result = self.call_service(
                services.learning_example_update, example=obj, actor=request.user, **fields
            )
        else:
            result = self.call_service(
                services.learning_example_create,
                agent=data["agent"],
                actor=request.user,
                input=data["input"],
                output=data["output"],
                status=LearningExampleStatus.PROPOSED,
            )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.learning_example_delete, example=obj, actor=request.user)


# --- Providers --------------------------------------------------------------------------------


@admin.register(ModelProvider)
class ModelProviderAdmin(OrganizationScopedAdmin):
    """Where model calls go. Admins manage them; the API key is write-only. The change page offers
    "Test connection" (``agents.admin.providers``)."""

    form = ModelProviderForm
    policy_resource = "model_provider"
    change_form_template = "admin/agents/modelprovider/change_form.html"
    list_display = [
        "name",
        "kind",
        "default_model",
        "is_default",
        "key_stored",
        "timeout_seconds",
        "price_input_per_1k",
        "price_output_per_1k",
    ]
    list_filter = ["kind", "is_default"]
    search_fields = ["name", "base_url", "default_model"]

    @admin.display(description="API key", boolean=True)
    def key_stored(self, obj):
        return bool(obj.api_key)

    def step_up_context(self, request, obj=None) -> dict:
        # Typing a key, or ticking "remove the stored key", touches the secret (policy.STEP_UP).
        # Another base_url or kind sends a stored key elsewhere (a form posts every field: the policy
        # compares them with the provider's).
        typed = request.POST.get("api_key") or None
        return {
            "api_key": typed if typed else ("" if request.POST.get("clear_api_key") else None),
            **{field: request.POST.get(field) for field in policy.SECRET_DESTINATION},
        }

    def get_fieldsets(self, request, obj=None):
        editable = obj is None or self.has_change_permission(request, obj)
        if not editable:
            # Read-only view: the key is never shown, only whether one is stored.
            key = ["key_stored"]
        elif obj is not None and obj.api_key:
            key = ["api_key", "clear_api_key"]
        else:
            key = ["api_key"]
        return [
            (None, {"fields": ["name", "kind", "is_default"]}),
            (
                "Connection",
                {
                    "fields": ["base_url", *key, "default_model"],
                    "description": "Where calls go and how they authenticate. The offline engine "
                    "needs none of these.",
                },
            ),
            ("Limits", {"fields": ["timeout_seconds", "max_retries"]}),
            (
                "Prices",
                {
                    "fields": ["price_input_per_1k", "price_output_per_1k"],
                    "description": "For runs' costs and cost budgets; leave 0 for a provider you "
                    "do not pay per token.",
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["key_stored"]
        return []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # One way to save ("Save"; "Delete" on a saved provider): after adding, the provider's page
        # opens (response_add) where its connection can be tested.
        context.update(show_save_and_add_another=False, show_save_and_continue=False)
        context["title"] = "Model provider" if obj is not None and obj.pk else "New model provider"
        if obj is not None and obj.pk:
            context["can_test_connection"] = self.allows(request, "model_provider.test", obj)
            context["test_connection_url"] = reverse("admin:agents_modelprovider_test", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_popup" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            f"The provider “{obj}” was added. Test its connection below.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:agents_modelprovider_change", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {k: data[k] for k in ModelProviderForm.Meta.fields if k != "api_key" and k in data}
        if data.get("api_key"):
            fields["api_key"] = data["api_key"]
        elif data.get("clear_api_key"):
            fields["api_key"] = ""
        if change:
            result = self.call_service(services.provider_update, provider=obj, actor=request.user, **fields)
        else:
            org = get_admin_access(request).organization
            name = fields.pop("name")
            result = self.call_service(
                services.provider_create, organization=org, actor=request.user, name=name, **fields
            )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.provider_delete, provider=obj, actor=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "<int:object_id>/test-connection/",
                view(require_POST(partial(provider_pages.provider_test, self))),
                name="agents_modelprovider_test",
            ),
        ]
        return custom + super().get_urls()


# --- Budgets ----------------------------------------------------------------------------------


@admin.register(Budget)
class BudgetAdmin(OrganizationScopedAdmin):
    """What runs may consume per day or month, for the organisation or one agent, and what the current
    period has consumed. Admins and owners; every write through ``agents.services``."""

    form = BudgetForm
    policy_resource = "budget"
    list_display = ["whose", "metric", "period", "consumed", "reserved", "resets_at"]
    list_filter = ["metric", "period", OrganizationAgentFilter]
    list_select_related = ["agent", "organization"]

    def get_queryset(self, request):
        return budgets_with_usage(super().get_queryset(request))

    def get_list_display(self, request):
        # One read of the organisation's unpriced agents per page, whatever the number of rows.
        unpriced: dict[int, dict[int, str]] = {}

        @admin.display(description="Warning")
        def warning(obj):
            if obj.organization_id not in unpriced:
                unpriced[obj.organization_id] = budget_unpriced_agents(organization_id=obj.organization_id)
            text = limits_nothing_warning(budget_limits_nothing_for(obj, unpriced[obj.organization_id]))
            return (
                format_html('<span class="pg-badge pg-badge-expires-soon">{}</span>', text) if text else "—"
            )

        return [*super().get_list_display(request), warning]

    def get_readonly_fields(self, request, obj=None):
        # What a budget counts is fixed at creation (``services.budget_update``).
        fixed = list(services.BUDGET_FIXED_FIELDS) if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]

    @admin.display(description="Budget")
    def whose(self, obj):
        return obj.agent.name if obj.agent_id else "Organisation (every agent)"

    @admin.display(description="Consumed this period / limit")
    def consumed(self, obj):
        row = consumption(obj, currency=obj.organization.currency)
        return format_html(
            '<meter min="0" max="100" low="80" high="99" optimum="0" value="{}">{}%</meter> {}',
            row.percent,
            row.percent,
            row.shown,
        )

    @admin.display(description="Reserved by runs in progress")
    def reserved(self, obj):
        return consumption(obj, currency=obj.organization.currency).reserved_shown or "—"

    @admin.display(description="Resets")
    def resets_at(self, obj):
        return consumption(obj).resets_at

    def save_model(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in services.BUDGET_FIELDS if k in form.cleaned_data}
        if change:
            result = self.call_service(services.budget_update, budget=obj, actor=request.user, **fields)
        else:
            org = get_admin_access(request).organization
            result = self.call_service(services.budget_create, organization=org, actor=request.user, **fields)
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.budget_delete, budget=obj, actor=request.user)


# --- What the agents app adds to the site ----------------------------------------------------

admin.site.register_dashboard_panel(
    "agents",
    template="admin/agents/dashboard_panel.html",
    context=dashboard_panel,
    order=10,
    uses_period=True,
)
admin.site.register_dashboard_panel(
    "budgets", template="admin/agents/budget/dashboard_panel.html", context=budgets_panel, order=15
)
admin.site.register_urls(
    [path("console/", include("agents.console.urls"))], header_link=("Test console", "admin:console:index")
)
# The approval inbox (agents.admin.activation_pages): activation requests and tool calls, each a section;
# the pending requests on the dashboard; a tool call's own page (agents.admin.approvals).
admin.site.register_dashboard_panel(
    "activation_requests",
    template="admin/agents/activation/dashboard_panel.html",
    context=admin_activation.activation_panel,
    order=8,
)
admin_activation.register_inbox_section(
    "activation_requests",
    template="admin/agents/activation/inbox_section.html",
    context=admin_activation.activation_section,
    order=10,
)
admin_activation.register_inbox_section(
    "tool_calls",
    template="admin/agents/approvals/inbox_section.html",
    context=approvals.tool_calls_section,
    order=20,
)
admin.site.register_urls(
    [
        path("approvals/", admin.site.admin_view(admin_activation.inbox), name="approvals"),
        path("tool-approvals/", admin.site.admin_view(approvals.inbox), name="tool_approvals"),
        path(
            "tool-approvals/<int:approval_id>/",
            admin.site.admin_view(approvals.approval_page),
            name="tool_approval",
        ),
    ],
    header_link=("Approvals", "admin:approvals"),
)
