"""Second factors: who has one, checking a code, and how fresh the last check is (step-up).

A staff user's second factor is a confirmed django-otp device (``prisma_glow.accounts.models``): an
authenticator app (TOTP, its key encrypted at rest), with one-time backup codes (hashed) for when the
phone is lost. Every door checks a code the same way, through ``check_code`` (the device's own
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

import django_otp
from django.conf import settings
from django.db import transaction

from prisma_glow import sessions
from prisma_glow.accounts.models import BackupCodeDevice

# When (seconds since the epoch, UTC) a second factor was last checked in this session.
CHECKED_AT = "_pg_factor_checked_at"


def mfa_required() -> bool:
    """Whether every staff sign-in needs a second factor (``PRISMA_GLOW_REQUIRE_MFA``)."""
    return settings.PRISMA_GLOW_REQUIRE_MFA


def has_factor(user) -> bool:
    """Whether ``user`` has enrolled a second factor (backup codes alone are not one)."""
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
    backup = not (len(code) == 6 and code.isdigit())
    with transaction.atomic():
        for device in django_otp.devices_for_user(user, confirmed=True, for_verify=True):
            if isinstance(device, BackupCodeDevice) == backup and device.verify_token(code):
                return device
    return None


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
def is_backup_code(code: str) -> bool:
    """Whether ``code`` is a backup code (anything but six digits), as ``check_code`` tells them apart."""
    code = normalise(code)
    return not (len(code) == 6 and code.isdigit())


def wait_seconds_for(device) -> int:
    """How many seconds django-otp's throttling makes ``device`` wait before it checks a code (0: none).

    After ``n`` wrong codes the next is refused unchecked for ``2 ** (n - 1)`` seconds
    (``OTP_*_THROTTLE_FACTOR``)."""
    import math

    from django.utils import timezone

    allowed, data = device.verify_is_allowed()
    until = (data or {}).get("locked_until")
    if allowed or until is None:
        return 0
    return max(0, math.ceil((until - timezone.now()).total_seconds()))


def wait_seconds(user, code: str) -> int:
    """How long ``user`` must wait before a code of ``code``'s kind is checked again (0: at once):
    the shortest wait among their devices of that kind, since any of them could accept it."""
    backup = is_backup_code(code)
    waits = [
        wait_seconds_for(device)
        for device in django_otp.devices_for_user(user, confirmed=True)
        if isinstance(device, BackupCodeDevice) == backup
    ]
    return min(waits) if waits else 0


def is_verified(request) -> bool:
    """Whether ``request``'s session user checked a second factor in this session (django-otp)."""
    user = getattr(request, "user", None)
    verified = getattr(user, "is_verified", None)
    return bool(verified()) if callable(verified) else False
