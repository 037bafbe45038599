"""Second factors: who has one, checking a code, and how fresh the last check is (step-up).

A staff user's second factor is a confirmed django-otp device (``prisma_glow.accounts.models``): an
authenticator app (TOTP, its key encrypted at rest), with one-time backup codes (hashed) for when the
phone is lost, and passkeys (WebAuthn, ``prisma_glow.accounts.passkeys``: an assertion instead of a
code, at the sign-in and at the admin's step-up). Every door checks a code the same way, through ``check_code`` (the device's own
throttling applies: each wrong code doubles the wait on that device), and records a good one with
``record_check``, which marks the session verified for django-otp (``request.user.is_verified()``),
renews the session key (ASVS V7.2.4) and stamps when the factor was last checked.

*Step-up*: a sensitive operation needs a factor checked within ``PRISMA_GLOW_STEP_UP_MINUTES``
(``checked_recently``). ``step_up_needed`` says whether a session user must check one first: everyone
when factors are required (``PRISMA_GLOW_REQUIRE_MFA``, the production default), and in development
anyone who has enrolled one. API keys are not session users and never step up (the permission policy
refuses them what needs a person).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import django_otp
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from prisma_glow import sessions
from prisma_glow.accounts import passkeys
from prisma_glow.accounts.models import BackupCodeDevice
from prisma_glow.audit.services import audit_person_event
from prisma_glow.ids import is_ascii_digits

# When (seconds since the epoch, UTC) a second factor was last checked in this session.
CHECKED_AT = "_pg_factor_checked_at"


def mfa_required() -> bool:
    """Whether every staff sign-in needs a second factor (``PRISMA_GLOW_REQUIRE_MFA``)."""
    return settings.PRISMA_GLOW_REQUIRE_MFA


def has_factor(user) -> bool:
    """Whether ``user`` has enrolled a second factor: an authenticator app or a passkey (backup codes
    alone are not one)."""
    if user is None or not user.is_authenticated:
        return False
    return any(
        not isinstance(device, BackupCodeDevice)
        for device in django_otp.devices_for_user(user, confirmed=True)
    )


def normalise(code: str) -> str:
    """A code as typed: spaces and dashes (``123 456``, ``abcd-efgh``) are not part of it."""
    return "".join(str(code or "").split()).replace("-", "")


def check_code(user, code: str):
    """The confirmed device of ``user`` that accepts ``code`` (consuming it), or None.

    Six digits are an authenticator's code, anything else a backup code: only devices of that kind
    are asked, so a mistyped code counts against the throttling of the device it was meant for. Each
    is locked for the check, so that one code is accepted once.
    """
    code = normalise(code)
    if not code or user is None or not user.is_authenticated:
        return None
    backup = is_backup_code(code)
    with transaction.atomic():
        for device in _code_devices(user, for_verify=True):
            if isinstance(device, BackupCodeDevice) == backup and device.verify_token(code):
                return device
    return None


def _code_devices(user, *, for_verify: bool = False):
    """``user``'s confirmed devices that take a typed code (a passkey answers a challenge instead)."""
    return [
        device
        for device in django_otp.devices_for_user(user, confirmed=True, for_verify=for_verify)
        if not isinstance(device, passkeys.WebAuthnCredential)
    ]


def record_check(request, device) -> None:
    """``device`` just accepted a code from ``request.user``: verify the session and renew its key."""
    django_otp.login(request, device)
    sessions.renew(request)
    request.session[CHECKED_AT] = sessions.now_seconds()


def checked_recently(request) -> bool:
    """Whether a second factor was checked in this session within ``PRISMA_GLOW_STEP_UP_MINUTES``."""
    session = getattr(request, "session", None)
    checked = session.get(CHECKED_AT) if session is not None else None
    if not isinstance(checked, int):
        return False
    return sessions.now_seconds() - checked < settings.PRISMA_GLOW_STEP_UP_MINUTES * 60


def step_up_needed(request) -> bool:
    """Whether ``request``'s session user must check a second factor before a sensitive operation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if checked_recently(request):
        return False
    return mfa_required() or has_factor(user)


# --- Sign-in with a code and enrolment (the MFA slice: prisma_glow/accounts) -----------------------
def device_kind(device) -> str:
    """``backup_code``, ``passkey`` or ``authenticator`` (what the audit log and the pages call a device)."""
    if isinstance(device, BackupCodeDevice):
        return "backup_code"
    return "passkey" if isinstance(device, passkeys.WebAuthnCredential) else "authenticator"


def is_backup_code(code: str) -> bool:
    """Whether ``code`` is a backup code (anything but six digits), as ``check_code`` tells them apart."""
    code = normalise(code)
    return not (len(code) == 6 and is_ascii_digits(code))


def wait_seconds_for(device) -> int:
    """How many seconds django-otp's throttling makes ``device`` wait before it checks a code (0: none).

    After ``n`` wrong codes the next is refused unchecked for ``2 ** (n - 1)`` seconds
    (``OTP_*_THROTTLE_FACTOR``)."""
    allowed, data = device.verify_is_allowed()
    until = (data or {}).get("locked_until")
    if allowed or until is None:
        return 0
    return max(0, math.ceil((until - timezone.now()).total_seconds()))


def wait_seconds(user, code: str) -> int:
    """How long ``user`` must wait before a code of ``code``'s kind is checked again (0: at once)."""
    until = throttled_until(user, code)
    if until is None:
        return 0
    return max(0, math.ceil((until - timezone.now()).total_seconds()))


def is_verified(request) -> bool:
    """Whether ``request``'s session user checked a second factor in this session (django-otp)."""
    user = getattr(request, "user", None)
    verified = getattr(user, "is_verified", None)
    return bool(verified()) if callable(verified) else False


# --- Step-up: one check of a code for a sensitive operation, whichever door asks -------------------


@dataclass(frozen=True)
class StepUp:
    """What a step-up came to: ``passed`` (the session is fresh until ``fresh_until``), or refused
    because the code (or passkey) was ``wrong`` (or already used), the devices are ``throttled`` after wrong codes
    (until ``retry_at``), or the user has ``no_factor`` to check."""

    outcome: str
    fresh_until: dt.datetime | None = None
    retry_at: dt.datetime | None = None

    def __bool__(self) -> bool:
        return self.outcome == "passed"


def fresh_until(request) -> dt.datetime | None:
    """When the current step-up window of ``request``'s session ends (None: no check recorded)."""
    checked = request.session.get(CHECKED_AT)
    if not isinstance(checked, int):
        return None
    return dt.datetime.fromtimestamp(checked, tz=dt.UTC) + dt.timedelta(
        minutes=settings.PRISMA_GLOW_STEP_UP_MINUTES
    )


def throttled_until(user, code: str) -> dt.datetime | None:
    """When the devices that would be asked about ``code`` (authenticators for six digits, backup
    codes otherwise, as ``check_code``) may be asked again after wrong codes: None when one of them
    may be asked now; since any of them could accept it, the earliest of their waits."""
    backup = is_backup_code(code)
    waits = []
    for device in _code_devices(user):
        if isinstance(device, BackupCodeDevice) != backup:
            continue
        allowed, data = device.verify_is_allowed()
        if allowed:
            return None
        waits.append((data or {}).get("locked_until"))
    known = [w for w in waits if w is not None]
    return min(known) if known and len(known) == len(waits) else None


def step_up(request, code, *, door: str, operation: str | None = None, passkey: str | None = None) -> StepUp:
    """Check ``code`` for ``request``'s user (``check_code``), or, given ``passkey`` (the browser's
    answer to the challenge the page showed), that passkey (``passkeys.verify``); when it is right,
    record the check (``record_check``: a new session key, fresh for PRISMA_GLOW_STEP_UP_MINUTES).
    Either way audited (``factor.step_up`` / ``factor.step_up_failed``, with the door and the operation
    it was for)."""
    user = request.user
    retry_at = None
    if not any(django_otp.devices_for_user(user, confirmed=True)):
        result = StepUp("no_factor")
    elif passkey is not None:
        try:
            device = passkeys.verify(request, user=user, answer=passkey, purpose="step_up")
        except passkeys.PasskeyError:
            result = StepUp("wrong_passkey")
        else:
            record_check(request, device)
            result = StepUp("passed", fresh_until=fresh_until(request))
            _audit_step_up(
                user, "factor.step_up", door=door, operation=operation, device=device, result=result
            )
            return result
    elif (retry_at := throttled_until(user, code)) is not None:
        result = StepUp("throttled", retry_at=retry_at)
    elif (device := check_code(user, code)) is not None:
        record_check(request, device)
        result = StepUp("passed", fresh_until=fresh_until(request))
        _audit_step_up(user, "factor.step_up", door=door, operation=operation, device=device, result=result)
        return result
    else:
        result = StepUp("wrong")
    _audit_step_up(user, "factor.step_up_failed", door=door, operation=operation, device=None, result=result)
    return result


def _audit_step_up(user, action: str, *, door, operation, device, result: StepUp) -> None:
    """A per-user event, as the lockout's: in each of the user's organisations (the check is the
    session's, whichever organisation it acts for), a system event for a user who belongs to none."""
    after = {"door": door, "operation": operation or ""}
    if device is not None:
        after["device"] = device_kind(device)
        after["fresh_until"] = result.fresh_until.isoformat() if result.fresh_until else None
    else:
        after["reason"] = result.outcome
    audit_person_event(user=user, action=action, actor=user, after=after)
