"""Writes to a user's second factors: enrolment, backup codes, removal and the operator's reset.

Each is atomic and audited in every organisation the user belongs to (a system event when none:
what a person's account went through is in the log their colleagues read), and ends the user's other
sessions (``sessions.end_user_sessions``): a factor added or taken away changes who may be signed in,
like a new password. ``keep`` is the request whose session survives (with a new key), or None to end
them all.

Codes are checked by ``prisma_glow.factors.check_code`` before these are called (its throttling must
commit even when the operation is refused); only the first code of an enrolment, on a device not yet
confirmed, is checked here.
"""

from __future__ import annotations

import base64

import django_otp
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp_webauthn.models import WebAuthnCredential

from prisma_glow import factors, sessions
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCode, BackupCodeDevice
from prisma_glow.audit.services import audit_person_event

BACKUP_CODE_COUNT = 10
AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_CODES_NAME = "Backup codes"

WRONG_FIRST_CODE = (
    "That code does not match: type the six digits your authenticator app shows now for Prisma Glow "
    "(check that the phone's clock is right)."
)
PASSKEY_LAST_FACTOR = (
    "Two-step sign-in is required here and this passkey is your only second factor: add another "
    "passkey or an authenticator app first, then remove this one."
)
REMOVAL_REFUSED = (
    "Two-step sign-in is required here, so it cannot be removed. To move to a new phone, use "
    "“Replace the authenticator app”; if the phone is lost, ask your operator to run "
    "manage.py reset_factors with your username."
)


def _audit(*, user, action: str, actor, after: dict) -> None:
    audit_person_event(user=user, action=action, actor=actor, after=after)


def backup_codes_left(user) -> int:
    """How many unused backup codes ``user`` has."""
    return BackupCode.objects.filter(device__user=user, device__confirmed=True).count()


def secret_of(device: AuthenticatorDevice) -> str:
    """The device's key as the base32 text an authenticator app accepts typed in (no padding)."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


# --- Enrolment ------------------------------------------------------------------------------------
@transaction.atomic
def totp_enrolment(*, user, fresh: bool = False) -> AuthenticatorDevice:
    """The authenticator ``user`` is enrolling: their one unconfirmed device, created when there is
    none (or anew when ``fresh``: a replacement starts with a key nobody has seen)."""
    pending = AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-pk")
    device = None if fresh else pending.first()
    if device is None:
        pending.delete()
        device = AuthenticatorDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


def enrolment_cancel(*, user) -> int:
    """Forget an enrolment not yet confirmed (the factors in use stay); returns how many were dropped."""
    return AuthenticatorDevice.objects.filter(user=user, confirmed=False).delete()[0]


def totp_confirm(*, user, device: AuthenticatorDevice, code: str, keep=None) -> list[str]:
    """Confirm ``device`` with its first ``code``: it becomes ``user``'s authenticator (replacing any
    other), with ten new backup codes, returned to be shown once. Audited ``factor.enrolled``.

    A wrong code raises ``ValidationError`` (and counts toward the device's throttling)."""
    if device.user_id != user.pk or device.confirmed:
        raise ValidationError({"code": "This enrolment is over: reload the page and start again."})
    if not device.verify_token(factors.normalise(code)):
        wait = factors.wait_seconds_for(device)
        raise ValidationError(
            {"code": WRONG_FIRST_CODE + (f" Wait {wait} seconds before the next try." if wait else "")}
        )
    return _confirm(user=user, device=device, keep=keep)


@transaction.atomic
def _confirm(*, user, device: AuthenticatorDevice, keep) -> list[str]:
    replaced = AuthenticatorDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()[0]
    AuthenticatorDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_backup_codes(user)
    _audit(
        user=user,
        action="factor.enrolled",
        actor=user,
        after={"device": "authenticator", "replaced": bool(replaced), "backup_codes": len(codes)},
    )
    sessions.end_user_sessions(user=user, keep=keep)
    return codes


def _new_backup_codes(user) -> list[str]:
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name=BACKUP_CODES_NAME, confirmed=True)
    return device.issue(BACKUP_CODE_COUNT)


@transaction.atomic
def backup_codes_regenerate(*, user, keep=None) -> list[str]:
    """Replace ``user``'s backup codes by ten new ones (returned, to be shown once); the old ones stop
    working. Needs an authenticator enrolled. Audited ``factor.backup_codes_regenerated``."""
    if not factors.has_factor(user):
        raise ValidationError("Set up an authenticator app first: backup codes come with it.")
    codes = _new_backup_codes(user)
    _audit(
        user=user, action="factor.backup_codes_regenerated", actor=user, after={"backup_codes": len(codes)}
    )
    sessions.end_user_sessions(user=user, keep=keep)
    return codes


# --- Passkeys (the ceremonies: prisma_glow/accounts/passkeys.py) -----------------------------------
def _other_factors(user, device: WebAuthnCredential) -> list:
    """``user``'s confirmed second factors other than ``device`` (backup codes are not one)."""
    return [
        d
        for d in django_otp.devices_for_user(user, confirmed=True)
        if not isinstance(d, BackupCodeDevice)
        and not (isinstance(d, WebAuthnCredential) and d.pk == device.pk)
    ]


@transaction.atomic
def passkey_registered(*, user, device: WebAuthnCredential, keep=None) -> list[str]:
    """``device`` was just registered (verified) for ``user``: audited ``factor.enrolled`` (device
    passkey) and the user's other sessions end. When it is their first factor, ten backup codes come
    with it (returned, to be shown once), as with the authenticator app; otherwise ``[]``."""
    first = not _other_factors(user, device)
    codes = _new_backup_codes(user) if first else []
    _audit(
        user=user,
        action="factor.enrolled",
        actor=user,
        after={"device": "passkey", "name": device.name, "first_factor": first, "backup_codes": len(codes)},
    )
    sessions.end_user_sessions(user=user, keep=keep)
    return codes


@transaction.atomic
def passkey_remove(*, user, device_id, keep=None) -> str:
    """``user`` removes one of their passkeys; refused (``ValidationError``) when it is their last
    second factor while factors are required. Audited ``factor.removed`` (device passkey); the
    user's other sessions end. Returns the passkey's name."""
    device = WebAuthnCredential.objects.select_for_update().filter(user=user, pk=device_id).first()
    if device is None:
        raise ValidationError("That passkey is not one of yours (or was already removed).")
    if factors.mfa_required() and not _other_factors(user, device):
        raise ValidationError(PASSKEY_LAST_FACTOR)
    name = device.name
    device.delete()
    ended = sessions.end_user_sessions(user=user, keep=keep)
    _audit(
        user=user,
        action="factor.removed",
        actor=user,
        after={"device": "passkey", "name": name, "sessions_ended": ended},
    )
    return name


# --- Removal --------------------------------------------------------------------------------------
@transaction.atomic
def factors_remove(*, user, keep=None) -> int:
    """``user`` removes their own second factors (authenticator, passkeys and backup codes); refused while
    factors are required. Audited ``factor.removed``. Returns how many devices were removed."""
    if factors.mfa_required():
        raise ValidationError(REMOVAL_REFUSED)
    return _remove(user=user, actor=user, action="factor.removed", keep=keep)


@transaction.atomic
def factors_reset(*, user) -> int:
    """The operator's reset for a lost phone (``manage.py reset_factors``): every factor of ``user``
    goes and every session of theirs ends; at the next sign-in they enrol again. Audited
    ``factor.reset`` (a system event: the operator is not a member)."""
    return _remove(user=user, actor=None, action="factor.reset", keep=None)


def _remove(*, user, actor, action: str, keep) -> int:
    removed = 0
    for model in (AuthenticatorDevice, BackupCodeDevice, WebAuthnCredential):
        removed += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
    ended = sessions.end_user_sessions(user=user, keep=keep)
    _audit(user=user, action=action, actor=actor, after={"devices_removed": removed, "sessions_ended": ended})
    return removed


# --- Sign-in --------------------------------------------------------------------------------------
def signin_record(*, user, device) -> None:
    """Audit a sign-in completed with a second factor (``login.second_factor``)."""
    after = {"device": factors.device_kind(device)}
    if isinstance(device, BackupCodeDevice):
        after["backup_codes_left"] = backup_codes_left(user)
    with transaction.atomic():
        _audit(user=user, action="login.second_factor", actor=user, after=after)
