"""Forms of the agents' staff pages: the ModelAdmins' forms, the creation wizard's steps, the persona
editor, assignments."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from agents import services
from agents.admin.assignments import ASSIGNMENT_PAGES, AssignmentPage
from agents.models import Agent, AgentType, Budget, LearningExample, ModelProvider, ProviderKind
from personas.models import Persona
from personas.models import default_max_tokens as personas_default_max_tokens
from prisma_glow.admin.forms import JSONObjectField
from prisma_glow.admin.scoping import get_admin_access, organization_users, scope_queryset

# --- ModelAdmin forms -------------------------------------------------------------------------


class AgentForm(forms.ModelForm):
    """The agent's settings page. Its status is not here: it follows releases and activation (the
    overview page's lifecycle buttons and the approval inbox), never a free choice."""

    class Meta:
        model = Agent
        fields = [
            "name",
            "slug",
            "type",
            "description",
            "owner",
            "provider",
            "model",
            "max_tool_rounds",
            "timeout_seconds",
        ]
        labels = {
            "slug": "Identifier",
            "type": "Practice area",
            "owner": "Responsible person",
            "provider": "Model provider",
            "max_tool_rounds": "Tool rounds per run",
            "timeout_seconds": "Run time limit (seconds)",
        }
        help_texts = {
            "name": "Shown in the registry and the console, e.g. “VAT adviser”.",
            "slug": "Used in API paths and exports: lower-case letters, digits and hyphens.",
            "type": "The practice the agent serves (tax, audit, advisory or general): for filters and "
            "reports; it changes nothing in how the agent runs.",
            "description": "What the agent is for and who should use it; shown to staff, never sent to "
            "the model.",
            "owner": "The person who answers for the agent's configuration. Blank: nobody in particular.",
            "provider": "Where the agent's model calls go. Blank: the organisation's default provider, "
            "or the offline engine when there is none.",
            "model": "The provider's model name, e.g. gpt-4o-mini. Blank: the provider's default model.",
            "max_tool_rounds": "How many times a run may call tools before it must answer (0–20; 0: no "
            "tools).",
            "timeout_seconds": "A run that takes longer is stopped and recorded as failed (1–900).",
        }


class LearningExampleForm(forms.ModelForm):
    class Meta:
        model = LearningExample
        fields = ["agent", "input", "output"]


class ModelProviderForm(forms.ModelForm):
    """A model provider's add and change page. The API key is write-only: never shown, left blank to
    keep the stored one; "remove the stored key" is offered only on a provider that holds one."""

    api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "class": "vTextField"}
        ),
        help_text="Write-only: it is stored encrypted and never shown again. Leave blank for a local "
        "server that needs no key.",
    )
    clear_api_key = forms.BooleanField(
        required=False,
        label="Remove the stored API key",
        help_text="Calls are then sent without a key (a local server that needs none).",
    )

    class Meta:
        model = ModelProvider
        fields = list(services.PROVIDER_FIELDS)
        labels = {
            "kind": "Type",
            "base_url": "Base URL",
            "default_model": "Default model",
            "price_input_per_1k": "Input price per 1,000 tokens",
            "price_output_per_1k": "Output price per 1,000 tokens",
            "timeout_seconds": "Timeout (seconds)",
            "max_retries": "Retries",
            "is_default": "Default provider for new agents",
        }
        # A plain URL box (not the admin's "Currently: <link> / Change:" pair) with an example.
        widgets = {"base_url": forms.URLInput(attrs={"placeholder": "https://api.openai.com/v1", "size": 60})}
        help_texts = {
            "name": "How staff pick it on an agent's settings, e.g. “Azure OpenAI (EU)”.",
            "kind": "OpenAI-compatible: OpenAI, Azure OpenAI, Ollama, vLLM, the llama.cpp server. "
            "Offline: the built-in extractive engine (no network, no key, quotes the firm's documents).",
            "base_url": "The OpenAI-compatible endpoint, e.g. https://api.openai.com/v1, "
            "https://YOUR-RESOURCE.openai.azure.com/openai/v1/ or http://ollama.internal:11434/v1. "
            "Internal addresses need PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS. Not used by the offline engine.",
            "default_model": "The model agents use when they name none, e.g. gpt-4o-mini or llama3.1:8b.",
            "price_input_per_1k": "What the provider charges per 1,000 prompt tokens, in the "
            "organisation's currency: runs' costs and cost budgets use it. 0: not priced.",
            "price_output_per_1k": "What the provider charges per 1,000 answer tokens, in the "
            "organisation's currency.",
            "timeout_seconds": "How long one model call may take before it fails (1–600). "
            "“Test connection” waits as long.",
            "max_retries": "Further attempts after a connection error, HTTP 408, 429 or 5xx (0–10), "
            "never past the timeout.",
            "is_default": "Agents without a provider of their own use this one. Ticking it takes the "
            "default over from the current default provider.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["api_key"] = ""
        has_key = bool(self.instance.pk and self.instance.api_key)
        if has_key and "api_key" in self.fields:
            self.fields[
                "api_key"
            ].help_text = "Stored — leave blank to keep it. Type a new key to replace it (it is never shown)."
            self.fields["api_key"].widget.attrs["placeholder"] = "Stored — leave blank to keep"
        if not has_key:
            # Nothing to remove on a new provider, or one without a key.
            self.fields.pop("clear_api_key", None)

    def clean(self):
        data = super().clean()
        if data.get("kind") == ProviderKind.OPENAI_COMPATIBLE and not data.get("base_url"):
            self.add_error("base_url", "An OpenAI-compatible provider needs a base URL.")
        return data

    def _post_clean(self):
        # Keep the stored key on the instance during model validation when none was typed.
        typed = self.cleaned_data.get("api_key")
        stored = self.instance.api_key
        super()._post_clean()
        if not typed:
            self.instance.api_key = stored


class ScopedForm(forms.Form):
    """A form whose choices are limited to the request's organisation (``request`` keyword)."""

    def __init__(self, *args, request, **kwargs):
        self.request = request
        self.organization = get_admin_access(request).organization
        super().__init__(*args, **kwargs)

    def scoped(self, queryset):
        return scope_queryset(queryset, self.request, all_for_superuser=False)


# --- Wizard steps -----------------------------------------------------------------------------


class BasicsForm(ScopedForm):
    name = forms.CharField(max_length=120, help_text="Shown in the registry, e.g. “VAT adviser”.")
    type = forms.ChoiceField(choices=AgentType.choices, initial=AgentType.GENERAL)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    owner = forms.ModelChoiceField(queryset=None, required=False, help_text="Blank: you.")
    provider = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Blank: the organisation's default, or the offline engine."
    )
    model = forms.CharField(max_length=120, required=False, help_text="Blank: the provider's default model.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = organization_users(self.request)
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
        self.fields["provider"].queryset = self.scoped(ModelProvider.objects.order_by("name"))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the agent a name.")
        if self.scoped(Agent.objects.filter(name__iexact=name)).exists():
            raise forms.ValidationError(f"An agent named “{name}” already exists in this organisation.")
        return name


class PersonaFields(forms.Form):
    """The persona's fields, shared by the wizard and the persona editor."""

    persona_name = forms.CharField(max_length=120, initial="Default", label="Persona name")
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "class": "pg-code"}),
        help_text="Who the agent is, what it may and may not do, how it cites.",
    )
    tone = forms.CharField(max_length=60, required=False, initial="professional")
    audience = forms.CharField(max_length=120, required=False, help_text="e.g. the firm's tax managers.")
    language = forms.CharField(
        max_length=16, initial="en", help_text="Language code of the answers (en, de, fr…)."
    )
    temperature = forms.DecimalField(
        min_value=Decimal("0"),
        max_value=Decimal("2"),
        decimal_places=2,
        max_digits=3,
        initial=Decimal("0.20"),
    )
    max_tokens = forms.IntegerField(min_value=1, max_value=128000, required=False, label="Max tokens")
    model_override = forms.CharField(max_length=120, required=False, help_text="Blank: the agent's model.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The default is a setting (PRISMA_GLOW_DEFAULT_MAX_TOKENS), read when the form is built.
        default = personas_default_max_tokens()
        field = self.fields["max_tokens"]
        field.widget.attrs["placeholder"] = str(default)
        field.help_text = (
            f"Longest answer the model may give, in tokens. Blank: the default of {default:,} "
            "(PRISMA_GLOW_DEFAULT_MAX_TOKENS)."
        )

    def clean_system_prompt(self):
        text = self.cleaned_data["system_prompt"].strip()
        if len(text) < 10:
            raise forms.ValidationError("Write the system prompt (at least a sentence).")
        return text

    def persona_values(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["persona_name"],
            "system_prompt": data["system_prompt"],
            "tone": data.get("tone") or "",
            "audience": data.get("audience") or "",
            "language": data["language"],
            "temperature": data["temperature"],
            "max_tokens": data.get("max_tokens"),
            "model_override": data.get("model_override") or "",
        }


class PersonaStepForm(ScopedForm, PersonaFields):
    pass


class AssignmentStepForm(ScopedForm):
    """A wizard step choosing what to assign of one kind (``kind``, set by ``assignment_step_form``)."""

    kind: AssignmentPage

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields[self.kind.choices_field]
        field.queryset = self.scoped(self.kind.offered().order_by("name"))
        if self.kind.describe is not None:
            field.label_from_instance = self.kind.describe


def assignment_step_form(kind: AssignmentPage) -> type[AssignmentStepForm]:
    """The wizard step's form for ``kind``: one multiple-choice field named ``kind.choices_field``."""
    field = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple, label=kind.choices_label
    )
    name = f"{kind.key.capitalize()}StepForm"
    return type(name, (AssignmentStepForm,), {"kind": kind, kind.choices_field: field})


# --- Persona editor ---------------------------------------------------------------------------


class PersonaEditorForm(PersonaFields):
    activate = forms.BooleanField(
        required=False,
        label="Make it current",
        help_text="The console runs the current version, and the next release takes it.",
    )

    @classmethod
    def from_persona(cls, persona: Persona) -> dict:
        return {
            "persona_name": persona.name,
            "system_prompt": persona.system_prompt,
            "tone": persona.tone,
            "audience": persona.audience,
            "language": persona.language,
            "temperature": persona.temperature,
            "max_tokens": persona.max_tokens,
            "model_override": persona.model_override,
        }


class CloneForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name of the copy")


class PersonaDiffForm(forms.Form):
    a = forms.TypedChoiceField(coerce=int, label="From version")
    b = forms.TypedChoiceField(coerce=int, label="To version")

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(v, f"v{v}") for v in versions]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("a") is not None and data.get("a") == data.get("b"):
            raise forms.ValidationError("Choose two different versions.")
        return data


# --- Assignments ------------------------------------------------------------------------------


class ApprovalSelect(forms.NullBooleanSelect):
    """Yes / no / empty, the empty choice saying what it means for an assignment."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [
            ("unknown", "As the tool says"),
            ("true", "Yes: a person approves each call"),
            ("false", "No"),
        ]


class AssignmentSettingsForm(forms.Form):
    """Per-assignment settings; which fields apply depends on the kind (tools, knowledge, guardrails)."""

    enabled = forms.BooleanField(required=False, initial=True)
    settings = JSONObjectField(
        required=False, help_text="Per-assignment settings for the tool (JSON object)."
    )
    requires_approval = forms.NullBooleanField(
        required=False,
        label="Requires approval",
        widget=ApprovalSelect,
        help_text="Whether each call of the tool by this agent waits for a person's approval.",
    )
    top_k = forms.IntegerField(min_value=1, max_value=50, initial=5, label="Passages (top k)")
    min_score = forms.FloatField(min_value=0.0, initial=0.0, label="Minimum score")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name != "target" and name not in ASSIGNMENT_PAGES[kind].settings_fields:
                del self.fields[name]


class AssignmentAddForm(AssignmentSettingsForm):
    target = forms.ModelChoiceField(queryset=None, label="Add")

    def __init__(self, *args, kind: str, targets, **kwargs):
        super().__init__(*args, kind=kind, **kwargs)
        self.fields["target"].queryset = targets
        self.order_fields(["target"])


def target_queryset(kind: str, request, agent):
    """What may be assigned: the organisation's (and built-in) items not assigned yet."""
    qs = ASSIGNMENT_PAGES[kind].offered().exclude(assignments__agent=agent)
    return scope_queryset(qs.order_by("name"), request, all_for_superuser=False)


class BudgetForm(forms.ModelForm):
    """A budget: for the organisation (no agent) or one agent, tokens or cost, per day or month."""

    class Meta:
        model = Budget
        fields = list(services.BUDGET_FIELDS)
        help_texts = {
            "limit": "Tokens (a whole number), or cost in the currency of the providers' prices. Each "
            "model call first reserves its largest possible cost; a run that cannot is refused.",
            "metric": "A cost budget limits nothing for agents whose provider has no prices (or that run "
            "on the offline engine): their calls cost 0. Fixed once the budget exists.",
            "period": "A calendar day or month. Fixed once the budget exists.",
        }
