"""Form fields every app's staff pages use."""

from __future__ import annotations

import json

from django import forms

from prisma_glow.audit.canonical import MAX_JSON_DEPTH, json_problem


def load_json_text(text: str):
    """JSON typed into a staff form, parsed; a ``ValidationError`` says where it is wrong, or what a
    JSON column could not store the same on both databases (as the API's ``check_json_value``)."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        # json.loads recurses once per bracket: a few thousand of them would otherwise be a 500.
        raise forms.ValidationError(
            f"Not valid JSON: nested too deeply (JSON is limited to {MAX_JSON_DEPTH} levels of nesting)."
        ) from exc
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    found = json_problem(value)
    if found:
        where, what = found
        raise forms.ValidationError(f"{what}: {where}." if where else f"{what}.")
    return value


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea; errors say where the JSON is wrong."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "pg-code"})

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return value

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return {}
        parsed = load_json_text(value)
        if not isinstance(parsed, dict):
            raise forms.ValidationError("Give a JSON object, e.g. {}.")
        return parsed
