"""Passkeys (WebAuthn) as a second factor: the ceremonies, without the package's views.

django-otp-webauthn gives the device (``WebAuthnCredential``, a django-otp ``Device``: ``has_factor``,
``django_otp.login`` and ``is_verified`` treat it like the authenticator app) and the helper around
py_webauthn (``Helper`` here: options, then verification of the browser's answer). Its own views are
not used: they log users in by themselves, past the pending sign-in, the audit and the session rules.
Our doors (``views.login_code``, ``views.account_security``, ``prisma_glow.admin.stepup``) render the
options into the page (``json_script``; ``static/admin_ui/passkeys.js`` asks the browser and posts its
answer in a hidden field of the same form) and check the answer here:

- the state of a ceremony (its challenge) waits in the session, for one user and one purpose
  (``register``, ``signin``, ``step_up``), at most ``OTP_WEBAUTHN_TIMEOUT_SECONDS``, and is taken out
  before the answer is checked: a challenge is answered once (a replayed answer finds no state);
- an assertion is checked against the credentials of that user only (the package refuses another
  user's credential), for the relying party id and the request's own origin;
- the relying party id is ``PRISMA_GLOW_PASSKEY_RP_ID`` or the request's host name; on an IP address
  (``127.0.0.1``) there is none (``unavailable_reason``), and the pages say so.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http.request import split_domain_port
from django_otp_webauthn.exceptions import OTPWebAuthnApiError
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential
from webauthn.helpers.exceptions import WebAuthnException

from prisma_glow import sessions

logger = logging.getLogger("prisma_glow.accounts")

STATE = "_pg_passkey_state"
PURPOSES = ("register", "signin", "step_up")
NAME_MAX = 64
DEFAULT_NAME = "Passkey"


class PasskeyError(Exception):
    """A passkey ceremony refused, with a message a person can act on."""


def host_name(request) -> str:
    domain, _port = split_domain_port(request.get_host())
    return domain


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def rp_id(request) -> str:
    """The relying party id: ``PRISMA_GLOW_PASSKEY_RP_ID`` when set, else the request's host name."""
    return settings.OTP_WEBAUTHN_RP_ID or host_name(request)


def origin(request) -> str:
    """The request's own origin (its host is one of ``ALLOWED_HOSTS``: ``get_host`` checks)."""
    return f"{request.scheme}://{request.get_host()}"


def unavailable_reason(request) -> str | None:
    """Why passkeys cannot be used on this request (None: they can)."""
    name = host_name(request)
    if is_ip_address(name) or is_ip_address(rp_id(request)):
        port = split_domain_port(request.get_host())[1]
        url = f"{request.scheme}://localhost{':' + port if port else ''}{request.get_full_path()}"
        return (
            f"Passkeys need a host name, not an IP address ({name}): open {url} to use one "
            "(the authenticator app and backup codes work here)."
        )
    return None


class Helper(WebAuthnHelper):
    """The package's helper, with the origin the browser must have used: the request's own, and one of
    ``PRISMA_GLOW_PASSKEY_ORIGINS`` when those are set."""

    def get_allowed_origins(self) -> list[str]:
        configured = list(settings.OTP_WEBAUTHN_ALLOWED_ORIGINS)
        own = origin(self.request)
        if configured and own not in configured:
            return configured  # the browser's origin is the request's: the check then fails
        return [own]


def helper(request) -> Helper:
    return Helper(request)


def credentials_of(user):
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("pk")


def has_passkey(user) -> bool:
    return user is not None and user.is_authenticated and credentials_of(user).exists()


def _keep_state(request, *, user, purpose: str, state: dict, **extra) -> None:
    request.session[STATE] = {
        "user": user.pk,
        "purpose": purpose,
        "at": sessions.now_seconds(),
        "state": state,
        **extra,
    }


def _take_state(request, *, user, purpose: str) -> dict:
    """The waiting ceremony for ``user`` and ``purpose``, taken out of the session (used once)."""
    data = request.session.pop(STATE, None)
    if (
        not isinstance(data, dict)
        or data.get("user") != user.pk
        or data.get("purpose") != purpose
        or not isinstance(data.get("at"), int)
        or not isinstance(data.get("state"), dict)
    ):
        raise PasskeyError("This passkey request is over or was already used: try the passkey again.")
    if sessions.now_seconds() - data["at"] > settings.OTP_WEBAUTHN_TIMEOUT_SECONDS:
        raise PasskeyError("The passkey took too long to answer: try it again.")
    return data


def _parse(answer: str) -> dict:
    try:
        data = json.loads(answer)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise PasskeyError("The browser's answer from the passkey could not be read: try again.")
    return data


# --- Registration (signed in, on the account-security page) ---------------------------------------
def registration_options(request, *, user, name: str) -> dict:
    """Options for ``navigator.credentials.create`` (JSON-ready); the challenge waits in the session."""
    options, state = helper(request).register_begin(user)
    _keep_state(request, user=user, purpose="register", state=state, name=clean_name(name))
    return options


def clean_name(name: str) -> str:
    name = " ".join(str(name or "").split())[:NAME_MAX]
    return name or DEFAULT_NAME


def waiting_registration_name(request, *, user) -> str | None:
    """The name of the passkey ``user`` is registering in this session, if any (to show the step)."""
    data = request.session.get(STATE)
    if isinstance(data, dict) and data.get("purpose") == "register" and data.get("user") == user.pk:
        return data.get("name")
    return None


def register(request, *, user, answer: str) -> WebAuthnCredential:
    """Verify the browser's answer to ``registration_options`` and store the new credential (named as
    asked). Raises ``PasskeyError``. Not audited here: ``services.passkey_registered`` does."""
    waiting = _take_state(request, user=user, purpose="register")
    data = _parse(answer)
    try:
        with transaction.atomic():
            device = helper(request).register_complete(user, waiting["state"], data)
            device.name = waiting.get("name") or DEFAULT_NAME
            device.confirmed = True
            device.save(update_fields=["name", "confirmed"])
    except IntegrityError:
        raise PasskeyError("This passkey is already registered.") from None
    except (WebAuthnException, OTPWebAuthnApiError, KeyError, TypeError, ValueError) as error:
        logger.warning("Passkey registration refused for user %s: %s", user.pk, error)
        raise PasskeyError(
            "The passkey could not be registered (the browser's answer did not verify): try again."
        ) from None
    return device


# --- Assertion (sign-in and step-up) --------------------------------------------------------------
def authentication_options(request, *, user, purpose: str) -> dict | None:
    """Options for ``navigator.credentials.get`` listing ``user``'s passkeys only, the challenge
    waiting in the session; None when the user has none or passkeys cannot be used here."""
    if purpose not in PURPOSES or not has_passkey(user) or unavailable_reason(request):
        return None
    options, state = helper(request).authenticate_begin(user=user, require_user_verification=False)
    _keep_state(request, user=user, purpose=purpose, state=state)
    return options


def verify(request, *, user, answer: str, purpose: str) -> WebAuthnCredential:
    """The credential of ``user`` that signed the challenge waiting for ``purpose`` (taken out of the
    session: one answer per challenge). Raises ``PasskeyError``."""
    waiting = _take_state(request, user=user, purpose=purpose)
    data = _parse(answer)
    try:
        with transaction.atomic():
            device = helper(request).authenticate_complete(user, waiting["state"], data)
    except (WebAuthnException, OTPWebAuthnApiError, KeyError, TypeError, ValueError) as error:
        logger.warning("Passkey refused for user %s (%s): %s", user.pk, purpose, error)
        raise PasskeyError("That passkey was not accepted: use one registered for your account.") from None
    if not device.confirmed:
        raise PasskeyError("That passkey was not accepted: use one registered for your account.")
    return device
