"""Staff pages for tools: the registry, the tool form (JSON Schema checked) and the test runner.

Built-in tools (no organisation) are shown to everyone and are read-only; an organisation's HTTP
tools are written through ``tools.services``.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import path, reverse
from django.utils.html import format_html
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from prisma_glow.admin.base import OrganizationScopedAdmin, adopt
from prisma_glow.admin.forms import JSONObjectField
from prisma_glow.admin.scoping import get_admin_access
from tools import services
from tools.admin import pages as admin_pages
from tools.models import Tool, ToolKind, approval_default


class ToolForm(forms.ModelForm):
    """An HTTP tool. The input schema must be a JSON Schema of an object; secret headers are write-only."""

    input_schema = JSONObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "pg-code"}),
        help_text='JSON Schema of the arguments, e.g. {"type": "object", "properties": {"q": {"type": "string"}}}.',
    )
    headers = JSONObjectField(required=False, help_text='Plain headers, e.g. {"Accept": "application/json"}.')
    secret_headers = JSONObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "pg-code", "autocomplete": "off"}),
        help_text="Write-only, stored encrypted (e.g. an Authorization header). Leave blank to keep them.",
    )
    clear_secret_headers = forms.BooleanField(required=False, label="Remove the stored secret headers")

    class Meta:
        model = Tool
        fields = list(services.EDITABLE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["secret_headers"] = ""
        if "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Blank: made from the name."
        if self.instance.pk and self.instance.secret_headers and "secret_headers" in self.fields:
            self.fields[
                "secret_headers"
            ].help_text = "Secret headers are stored (hidden). Type new ones to replace them."

    def clean_input_schema(self):
        schema = self.cleaned_data.get("input_schema") or {}
        try:
            Draft202012Validator.check_schema(schema or {"type": "object"})
        except SchemaError as exc:
            raise forms.ValidationError(f"Not a valid JSON Schema: {exc.message}")
        if schema and schema.get("type", "object") != "object":
            raise forms.ValidationError('Tool arguments are a JSON object: use "type": "object".')
        return schema

    def clean_secret_headers(self):
        # The model keeps them as JSON text: typed ones are checked by Tool.clean (as the plain headers
        # are) in _post_clean; blank keeps the stored ones (which the service checks).
        typed = self.cleaned_data.get("secret_headers")
        return json.dumps(typed) if typed else ""

    def _post_clean(self):
        stored = self.instance.secret_headers
        super()._post_clean()
        # The instance keeps what is stored; the service saves the typed headers.
        self.instance.secret_headers = stored


@admin.register(Tool)
class ToolAdmin(OrganizationScopedAdmin):
    """The tool registry: the organisation's HTTP tools and the built-in ones."""

    form = ToolForm
    list_display = [
        "name",
        "kind_badge",
        "short_description",
        "origin",
        "is_enabled",
        "inside_firm",
        "assigned",
        "test_link",
    ]
    list_filter = ["kind", "is_enabled", "inside_firm", "requires_approval"]
    search_fields = ["name", "slug", "description"]
    ordering = ["name"]
    change_form_template = "admin/tools/tool/change_form.html"
    policy_resource = "tool"  # the policy keeps built-in tools read-only

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(assignment_count=Count("assignments"))

    @admin.display(description="Kind", ordering="kind")
    def kind_badge(self, obj):
        return format_html('<span class="pg-badge pg-badge-{}">{}</span>', obj.kind, obj.get_kind_display())

    @admin.display(description="Description")
    def short_description(self, obj):
        return (obj.description[:100] + "…") if len(obj.description) > 100 else obj.description

    @admin.display(description="Provided by")
    def origin(self, obj):
        return "Prisma Glow" if obj.organization_id is None else "Your organisation"

    @admin.display(description="Agents", ordering="assignment_count")
    def assigned(self, obj):
        return obj.assignment_count

    @admin.display(description="")
    def test_link(self, obj):
        return format_html('<a href="{}">Test</a>', reverse("admin:tools_tool_test", args=[obj.pk]))

    def get_changeform_initial_data(self, request):
        # A new tool follows the one rule (tools.models.approval_default): approval on unless read-only.
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("requires_approval", approval_default(kind=ToolKind.HTTP, read_only=False))
        return initial

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only view: secrets are never shown, not even decrypted into a read-only field.
            hidden = {"secret_headers", "clear_secret_headers"}
            if obj.organization_id is None:
                hidden |= {"url_template", "http_method", "headers"}
                fields.append("builtin_key")
            fields = [f for f in fields if f not in hidden]
        return fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {k: data[k] for k in ToolForm.Meta.fields if k in data and k != "secret_headers"}
        if data.get("secret_headers"):
            fields["secret_headers"] = data["secret_headers"]
        elif data.get("clear_secret_headers"):
            fields["secret_headers"] = {}
        if change:
            result = self.call_service(services.tool_update, tool=obj, actor=request.user, **fields)
        else:
            result = self.call_service(
                services.tool_create,
                organization=get_admin_access(request).organization,
                actor=request.user,
                name=fields.pop("name"),
                url_template=fields.pop("url_template"),
                slug=fields.pop("slug") or "",
                kind=ToolKind.HTTP,
                **fields,
            )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.tool_delete, tool=obj, actor=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "<int:tool_id>/test/",
                view(lambda request, tool_id: admin_pages.tool_test(self, request, tool_id)),
                name="tools_tool_test",
            )
        ]
        return custom + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["schema_preview"] = json.dumps(obj.input_schema, indent=2) if obj is not None else ""
        return super().render_change_form(request, context, add, change, form_url, obj)
