"""The forms of the evaluations staff pages, and the kinds of check listed beside the case editor."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from agents.models import Agent, ModelProvider, Release
from evaluations import checks as checks_engine
from evaluations import services
from evaluations.imports import MAX_BYTES
from evaluations.models import Suite
from prisma_glow.admin.forms import load_json_text
from prisma_glow.admin.scoping import scope_queryset

CHECK_KINDS_HELP = [
    ("contains / not_contains", '{"kind": "contains", "text": "reverse charge", "ignore_case": true}'),
    ("regex", '{"kind": "regex", "pattern": "\\\\b19 ?%", "ignore_case": false}'),
    ("cites_at_least", '{"kind": "cites_at_least", "count": 1}'),
    ("cites_document", '{"kind": "cites_document", "document_title": "VAT manual"}'),
    ("blocked / not_blocked", '{"kind": "not_blocked", "guardrail": "PII filter"}'),
    ("tool_called", '{"kind": "tool_called", "tool": "vat-calculator", "arguments": {"rate": 19}}'),
    ("json_schema", '{"kind": "json_schema", "schema": {"type": "object", "required": ["total"]}}'),
    ("number_within", '{"kind": "number_within", "value": 190, "tolerance": 0.5}'),
    ("latency_under", '{"kind": "latency_under", "ms": 5000}'),
    ("cost_under", '{"kind": "cost_under", "amount": "0.05"}'),
    (
        "rubric",
        '{"kind": "rubric", "rubric": "Names the reverse charge and who pays", "min_agreement": 0.8}',
    ),
]


class ChecksField(forms.CharField):
    """A JSON list of checks, validated by the checks engine (each bad check named)."""

    widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "pg-code"})

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        raw = load_json_text(text)
        return checks_engine.validate_checks(raw)


class CaseForm(forms.Form):
    name = forms.CharField(max_length=200)
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="The question put to the agent."
    )
    as_of = forms.DateField(
        required=False, help_text="Knowledge as of this day (documents in force then); blank: today."
    )
    must_pass = forms.BooleanField(
        required=False, help_text="A run failing this case fails, whatever its rate."
    )
    expected_output = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Shown beside the answer."
    )
    checks = ChecksField(
        required=False,
        help_text='A JSON list of checks, e.g. [{"kind": "contains", "text": "reverse charge"}]; the kinds '
        "are listed beside the form.",
    )


class SuiteForm(forms.Form):
    """A suite's settings; ``agent`` only when it is created (a suite's runs are of its agent's
    releases). The choices are the organisation's own agents and providers: another organisation's
    id is "not one of the available choices", never a write. A new suite belongs to the session's
    organisation; an existing one's providers are its own organisation's (a superuser may open any
    organisation's suite)."""

    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), help_text="The agent the cases are put to.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    judge_provider = forms.ModelChoiceField(
        queryset=ModelProvider.objects.none(),
        required=False,
        empty_label="The organisation's default provider",
        help_text="The provider whose model grades rubric checks.",
    )
    judge_model = forms.CharField(
        max_length=120, required=False, help_text="Blank: the judge provider's default model."
    )
    #: "Create a suite for this agent" on an execution's page comes back to it once the suite exists.
    execution = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, request, suite: Suite | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        providers = ModelProvider.objects.order_by("name", "id")
        self.fields["judge_provider"].queryset = (
            scope_queryset(providers, request, all_for_superuser=False)
            if suite is None
            else providers.filter(organization_id=suite.organization_id)
        )
        if suite is None:
            self.fields["agent"].queryset = scope_queryset(
                Agent.objects.order_by("name", "id"), request, all_for_superuser=False
            )
        else:
            del self.fields["agent"], self.fields["execution"]


def percent(share: Decimal) -> str:
    """A share (0–1) as the percentage people type: ``0.875`` → ``87.5``, ``0.900`` → ``90``."""
    return f"{share * 100:.1f}".removesuffix(".0")


class ThresholdForm(forms.Form):
    """The requirement's threshold as people say it (a percentage); the model keeps a share (0–1)."""

    threshold = forms.DecimalField(
        label="Threshold (%)",
        min_value=0,
        max_value=100,
        decimal_places=1,
        initial=lambda: percent(services.DEFAULT_THRESHOLD),
        help_text="The share of all cases a run must pass (every must-pass case passes too).",
    )

    def share(self) -> Decimal:
        return (self.cleaned_data["threshold"] / 100).quantize(Decimal("0.001"))


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text=f"A .csv (with a header line) or .jsonl file, at most {MAX_BYTES // 2**20} MB."
    )


class RunForm(forms.Form):
    release = forms.ModelChoiceField(queryset=Release.objects.none(), empty_label=None)

    def __init__(self, *args, suite: Suite, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["release"]
        field.queryset = Release.objects.filter(agent_id=suite.agent_id).order_by("-number")
        field.label_from_instance = lambda release: f"Release {release.number}"
