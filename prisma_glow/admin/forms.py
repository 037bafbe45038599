"""Form fields every app's staff pages use."""

from __future__ import annotations

import json

from django import forms


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
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        if not isinstance(parsed, dict):
            raise forms.ValidationError("Give a JSON object, e.g. {}.")
        return parsed
