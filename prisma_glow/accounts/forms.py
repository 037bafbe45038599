"""Forms of the login's code step and of the two-step sign-in page."""

from __future__ import annotations

from django import forms


class CodeForm(forms.Form):
    """One code: the six digits of the authenticator app, or a backup code."""

    code = forms.CharField(
        label="Code",
        max_length=64,
        strip=True,
        help_text="The six digits your authenticator app shows, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
        error_messages={"required": "Type the code your authenticator app shows, or a backup code."},
    )

    def clean_code(self) -> str:
        # Backup codes are stored in lower case; a person may copy them in capitals.
        return self.cleaned_data["code"].lower()


class FirstCodeForm(CodeForm):
    """The first code of a new authenticator app, which confirms the enrolment."""

    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        strip=True,
        help_text="The six digits the app shows for Prisma Glow once it has read the QR code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"required": "Type the six digits the app shows."},
    )


class PasskeyForm(CodeForm):
    """A passkey to add (its name) or remove; the code is asked only when no factor was checked in the
    last ``PRISMA_GLOW_STEP_UP_MINUTES`` (the view drops it otherwise)."""

    name = forms.CharField(
        label="Name of the passkey",
        max_length=64,
        required=False,
        strip=True,
        help_text="So that you recognise it later, e.g. “Work laptop” or “Security key”.",
    )
    device = forms.IntegerField(required=False, widget=forms.HiddenInput)
