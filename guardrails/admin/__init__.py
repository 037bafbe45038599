"""Staff pages for guardrails: the list, the form (configuration validated per kind) and the tester."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import path, reverse
from django.utils.html import format_html

from guardrails import services
from guardrails.admin import pages as admin_pages
from guardrails.models import Guardrail
from prisma_glow.admin.base import OrganizationScopedAdmin, adopt
from prisma_glow.admin.forms import JSONObjectField
from prisma_glow.admin.scoping import get_admin_access


class GuardrailForm(forms.ModelForm):
    config = JSONObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "class": "pg-code"}),
        help_text='Settings of the kind, as JSON, e.g. {"keywords": ["wire funds"]} or {"entities": ["iban", "email"]}.',
    )

    class Meta:
        model = Guardrail
        fields = [
            "name",
            "description",
            "kind",
            "action",
            "applies_to_input",
            "applies_to_retrieval",
            "applies_to_output",
            "config",
            "enabled",
        ]

    def clean(self):
        data = super().clean()
        stages = ("applies_to_input", "applies_to_retrieval", "applies_to_output")
        if not any(data.get(s) for s in stages):
            self.add_error("applies_to_input", "Choose at least one stage: input, retrieval or output.")
        return data


@admin.register(Guardrail)
class GuardrailAdmin(OrganizationScopedAdmin):
    """Guardrails of the organisation, with a tester on each one's page."""

    form = GuardrailForm
    list_display = ["name", "kind", "action_badge", "stages", "enabled", "assigned", "test_link"]
    list_filter = ["kind", "action", "enabled"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    change_form_template = "admin/guardrails/guardrail/change_form.html"
    policy_resource = "guardrail"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(assignment_count=Count("assignments"))

    @admin.display(description="Action", ordering="action")
    def action_badge(self, obj):
        tone = {"block": "blocked", "redact": "warn", "warn": "warn", "append": "kind"}.get(
            obj.action, "kind"
        )
        return format_html('<span class="pg-badge pg-badge-{}">{}</span>', tone, obj.get_action_display())

    @admin.display(description="Stages")
    def stages(self, obj):
        names = [s for s in ("input", "retrieval", "output") if getattr(obj, f"applies_to_{s}")]
        return ", ".join(names)

    @admin.display(description="Agents", ordering="assignment_count")
    def assigned(self, obj):
        return obj.assignment_count

    @admin.display(description="")
    def test_link(self, obj):
        return format_html('<a href="{}">Test</a>', reverse("admin:guardrails_guardrail_test", args=[obj.pk]))

    def step_up_context(self, request, obj=None) -> dict:
        # An unticked checkbox is absent from the POST: turning a guardrail off (policy.STEP_UP).
        return {"enabled": "enabled" in request.POST} if obj is not None else {}

    def save_model(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in GuardrailForm.Meta.fields if k in form.cleaned_data}
        if change:
            changed = {k: v for k, v in fields.items() if k in form.changed_data}
            result = self.call_service(
                services.guardrail_update, guardrail=obj, actor=request.user, **changed
            )
        else:
            result = self.call_service(
                services.guardrail_create,
                organization=get_admin_access(request).organization,
                actor=request.user,
                **fields,
            )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.guardrail_delete, guardrail=obj, actor=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "<int:guardrail_id>/test/",
                view(lambda request, guardrail_id: admin_pages.guardrail_test(self, request, guardrail_id)),
                name="guardrails_guardrail_test",
            )
        ]
        return custom + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["tester_form"] = admin_pages.GuardrailTestForm()
        return super().render_change_form(request, context, add, change, form_url, obj)
