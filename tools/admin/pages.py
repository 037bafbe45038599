"""The tool test runner: a form generated from the tool's JSON Schema, and the result of a run."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError

from prisma_glow.admin.forms import JSONObjectField
from prisma_glow.admin.htmx import htmx_partial
from prisma_glow.admin.scoping import scoped_get
from tools.models import Tool
from tools.registry import ToolArgumentsInvalid, run_tool


class JSONValueField(forms.CharField):
    """Any JSON value (for object, array or union-typed properties)."""

    widget = forms.Textarea(attrs={"rows": 2, "class": "pg-code"})

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        try:
            return json.loads(value, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc.msg}.")


class DecimalNumberField(forms.CharField):
    """A JSON Schema ``number``, kept exact as a Decimal."""

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return None
        try:
            number = Decimal(value.replace(",", ""))
        except InvalidOperation:
            raise ValidationError("Enter a number.")
        if not number.is_finite():
            raise ValidationError("Enter a finite number.")
        return number


def schema_field(name: str, prop: dict, required: bool) -> forms.Field:
    """The form field for one property of a JSON Schema (type, enum, description, bounds)."""
    # Title and description are the tool author's text: plain strings, escaped where they are shown
    # (prisma_glow/templates/admin/pg/fields.html renders help texts escaped, inside an hx-disable container).
    label = str(prop.get("title") or name)
    help_text = str(prop.get("description") or "")
    common = {"required": required, "label": label, "help_text": help_text}
    kind = prop.get("type")
    if isinstance(kind, list):
        # A union such as ["string", "number"] (decimals as strings): typed as text, checked by the schema.
        kind = "string" if "string" in kind else "number" if {"number", "integer"} & set(kind) else None
    if "enum" in prop and all(isinstance(v, (str, int, float)) for v in prop["enum"]):
        choices = [("", "—")] + [(json.dumps(v), str(v)) for v in prop["enum"]]
        field = forms.TypedChoiceField(choices=choices, coerce=json.loads, empty_value=None, **common)
        if "default" in prop:
            field.initial = json.dumps(prop["default"])
        return field
    if kind == "string":
        field = forms.CharField(
            max_length=prop.get("maxLength"),
            min_length=prop.get("minLength"),
            strip=False,
            **common,
        )
        if prop.get("default") is not None:
            field.initial = prop["default"]
        return field
    if kind == "integer":
        return forms.IntegerField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "number":
        return DecimalNumberField(**common)
    if kind == "boolean":
        choices = [("", "—"), ("true", "Yes"), ("false", "No")]
        return forms.TypedChoiceField(
            choices=choices, coerce=lambda v: v == "true", empty_value=None, **common
        )
    return JSONValueField(**common)


def arguments_form_class(schema: dict) -> type[forms.Form]:
    """A Form class with one field per property of ``schema`` (plus a raw JSON alternative)."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    attrs: dict = {
        f"arg_{name}": schema_field(name, prop if isinstance(prop, dict) else {}, name in required)
        for name, prop in properties.items()
    }
    attrs["raw_json"] = JSONObjectField(
        required=False,
        label="Or the arguments as JSON",
        help_text="When filled in, these arguments are used instead of the fields above.",
    )
    return type("ToolArgumentsForm", (forms.Form,), attrs)


def build_form(schema: dict, data=None):
    form_class = arguments_form_class(schema)
    form = form_class(data)
    if data is not None and (data.get("raw_json") or "").strip():
        # Raw JSON replaces the generated fields: they need not be filled in.
        for name, field in form.fields.items():
            if name != "raw_json":
                field.required = False
    return form


def collect_arguments(form) -> dict:
    raw = form.cleaned_data.get("raw_json")
    if raw:
        return raw
    return {
        name[len("arg_") :]: value
        for name, value in form.cleaned_data.items()
        if name.startswith("arg_") and value not in (None, "")
    }


def tool_test(model_admin, request, tool_id):
    """Run a tool with arguments typed into a form made from its schema; show the result."""
    model_admin.require(request, "tool.test")
    tool = scoped_get(Tool.objects.all(), request, pk=tool_id)
    schema = tool.input_schema or {"type": "object"}
    result = None
    arguments = None
    status = 200
    if request.method == "POST":
        form = build_form(schema, request.POST)
        if form.is_valid():
            arguments = collect_arguments(form)
            try:
                result = run_tool(tool, arguments)
            except ToolArgumentsInvalid as exc:
                for message in exc.messages:
                    path, _, text = message.partition(": ")
                    field = f"arg_{path}"
                    if field in form.fields and not form.cleaned_data.get("raw_json"):
                        form.add_error(field, text or message)
                    else:
                        form.add_error(None, message)
                status = 400
        else:
            status = 400
    else:
        form = build_form(schema)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Test {tool.name}",
        "tool": tool,
        "form": form,
        "result": result,
        "arguments": arguments,
        "schema_json": json.dumps(schema, indent=2, ensure_ascii=False),
    }
    return htmx_partial(request, "admin/tools/tool/test.html", context, partial="result", status=status)
