"""The guardrail tester: text in, the verdict and the highlighted spans out.

It runs ``guardrails.engine.evaluate`` — the same function the runtime and the API call — on the
saved guardrail or, from the form, on the configuration being edited (before it is saved).
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from guardrails.checks import validate_config
from guardrails.engine import evaluate
from guardrails.models import Guardrail, GuardrailAction, GuardrailKind, Stage
from prisma_glow.admin.htmx import htmx_partial
from prisma_glow.admin.scoping import scoped_get
from prisma_glow.admin.templatetags import highlight_spans


class GuardrailTestForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Text to check",
        strip=False,
        help_text="A question, a retrieved passage or an answer, as the agent would see it.",
    )
    stage = forms.ChoiceField(choices=Stage.choices, initial=Stage.INPUT)
    # The form being edited (optional): test the configuration before saving it.
    kind = forms.ChoiceField(choices=GuardrailKind.choices, required=False)
    action = forms.ChoiceField(choices=GuardrailAction.choices, required=False)
    config = forms.CharField(required=False)

    def clean_text(self):
        text = self.cleaned_data["text"]
        if not text.strip():
            raise ValidationError("Type a text to check.")
        return text


def _edited_guardrail(guardrail: Guardrail, data: dict):
    """The guardrail as edited in the form (a mapping ``evaluate`` accepts), or the saved one."""
    if not data.get("kind"):
        return guardrail
    try:
        config = json.loads(data.get("config") or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationError({"config": f"Not valid JSON: {exc.msg}."})
    if not isinstance(config, dict):
        raise ValidationError({"config": "The configuration must be a JSON object."})
    action = data.get("action") or guardrail.action
    validated = validate_config(data["kind"], config, action=action)
    return {
        "id": guardrail.pk,
        "name": guardrail.name,
        "kind": data["kind"],
        "action": action,
        "config": validated if isinstance(validated, dict) else config,
        "enabled": True,
    }


def guardrail_test(model_admin, request, guardrail_id):
    """Check a text against one guardrail at a stage; show the verdict with the spans marked."""
    guardrail = scoped_get(Guardrail.objects.all(), request, pk=guardrail_id)
    verdict = None
    marked = ""
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        model_admin.require(request, "guardrail.check")
        form = GuardrailTestForm(request.POST)
        if form.is_valid():
            try:
                item = _edited_guardrail(guardrail, form.cleaned_data)
            except ValidationError as exc:
                errors = (
                    [m for ms in exc.message_dict.values() for m in ms]
                    if hasattr(exc, "error_dict")
                    else exc.messages
                )
                status = 400
            else:
                if not isinstance(item, dict):
                    # The saved guardrail runs at the chosen stage even if it is not switched on there.
                    item = {
                        "id": item.pk,
                        "name": item.name,
                        "kind": item.kind,
                        "action": item.action,
                        "config": item.config,
                        "enabled": True,
                    }
                text = form.cleaned_data["text"]
                verdict = evaluate([item], text, stage=form.cleaned_data["stage"])
                spans = [span for result in verdict.results for span in result.spans]
                marked = highlight_spans(text, spans)
        else:
            status = 400
    else:
        form = GuardrailTestForm()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Test {guardrail.name}",
        "guardrail": guardrail,
        "form": form,
        "verdict": verdict,
        "marked": marked,
        "errors": errors,
    }
    return htmx_partial(
        request, "admin/guardrails/guardrail/test.html", context, partial="verdict", status=status
    )
