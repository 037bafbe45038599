"""Forms of the test console: a message to run, and feedback on an answer."""

from __future__ import annotations

from django import forms

from agents.models import Agent, Conversation, Rating
from personas.models import Persona

MESSAGE_MAX_LENGTH = 20_000
CORRECTION_MAX_LENGTH = 20_000


class RunForm(forms.Form):
    """Which agent (and persona version) answers which message.

    ``agents`` is the queryset the user may pick from (their organisation's agents); a persona must
    be a version of the chosen agent. A blank persona means the agent's active version.
    ``conversation`` (hidden) is the conversation the message continues, one of the organisation's
    (``conversations``) with the chosen agent; blank: the one the console keeps for the agent, or a new
    one.
    """

    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), widget=forms.HiddenInput)
    persona = forms.ModelChoiceField(
        queryset=Persona.objects.none(),
        required=False,
        label="Persona version",
        empty_label="Active version",
    )
    message = forms.CharField(
        max_length=MESSAGE_MAX_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask the agent something…"}),
        help_text="Enter sends; Shift+Enter starts a new line.",
        error_messages={"required": "Type a message to send."},
    )
    conversation = forms.ModelChoiceField(
        queryset=Conversation.objects.none(), required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, agents, agent: Agent | None = None, conversations=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = agents
        if conversations is not None:
            self.fields["conversation"].queryset = conversations
        self.fields["conversation"].error_messages["invalid_choice"] = (
            "This conversation is not one of your organisation's: start a new conversation."
        )
        self.fields["agent"].error_messages["invalid_choice"] = "Choose one of your organisation's agents."
        personas = Persona.objects.filter(agent=agent) if agent is not None else Persona.objects.all()
        self.fields["persona"].queryset = personas.order_by("-version")
        self.fields["persona"].label_from_instance = _persona_label
        if agent is not None:
            self.fields["agent"].initial = agent.pk

    def clean_message(self) -> str:
        message = self.cleaned_data["message"]
        if not message.strip():
            raise forms.ValidationError("Type a message to send.", code="required")
        return message

    def clean(self):
        cleaned = super().clean()
        agent, persona = cleaned.get("agent"), cleaned.get("persona")
        if agent is not None and persona is not None and persona.agent_id != agent.pk:
            self.add_error("persona", "This persona version belongs to another agent.")
        conversation = cleaned.get("conversation")
        if agent is not None and conversation is not None and conversation.agent_id != agent.pk:
            self.add_error(
                "conversation", "This conversation is with another agent: start a new conversation."
            )
        return cleaned


def _persona_label(persona: Persona) -> str:
    label = f"v{persona.version} — {persona.name}"
    return f"{label} (active)" if persona.is_active else label


class FeedbackForm(forms.Form):
    """A thumbs up or down on one answer, with an optional correction (what it should have said)."""

    rating = forms.TypedChoiceField(
        choices=[(Rating.UP.value, "Helpful"), (Rating.DOWN.value, "Not helpful")],
        coerce=int,
        error_messages={"required": "Choose thumbs up or thumbs down."},
    )
    correction = forms.CharField(
        required=False,
        max_length=CORRECTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Correction",
        help_text="Optional: what the answer should have been. It is proposed as a learning example.",
    )
