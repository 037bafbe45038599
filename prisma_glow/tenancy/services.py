"""Writes on organisations, memberships, invitations and API keys.

Every function is keyword-only, runs in one transaction, validates with ``full_clean()`` and appends
an audit event (actor, action, before, after). The API, the admin and the management commands all
call these, so each operation has one code path whichever door it comes through.

``actor`` is a user, an ``APIKey`` or None (the system, e.g. a management command).
Each locks the organisation first (``prisma_glow.locking.lock_for_write``), as every audited write does,
and is retried when it loses a deadlock anyway. State conflicts (the last owner, a key already
revoked…) raise ``ConflictError`` — a Django
``ValidationError`` that the API answers with 409 and admin forms show like any validation error.
"""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, When
from django.urls import reverse
from django.utils import timezone

from prisma_glow import policy
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict
from prisma_glow.sessions import end_user_sessions
from prisma_glow.tenancy.models import (
    APIKey,
    Invitation,
    InvitationState,
    Membership,
    Organization,
    Role,
    Scope,
)
from prisma_glow.tenancy.selectors import invitation_by_token

# --- Organisations ------------------------------------------------------------------------------


@transaction.atomic
def organization_create(
    *, name: str, slug: str, actor=None, owner=None, currency: str | None = None
) -> Organization:
    """Create an organisation; ``owner`` (a user), when given, becomes its first owner; ``currency``
    defaults to the model's (EUR)."""
    organization = Organization(name=name, slug=slug)
    if currency:
        organization.currency = currency
    organization.full_clean()
    organization.save()
    audit_record(
        organization=organization,
        action="organization.create",
        actor=actor,
        obj=organization,
        after=snapshot(organization),
    )
    if owner is not None:
        membership_add(organization=organization, actor=actor, user=owner, role=Role.OWNER)
    return organization


ORGANIZATION_EDITABLE_FIELDS = ("name", "slug", "currency", "one_person_activation")


@retry_on_conflict
@transaction.atomic
def organization_update(*, organization: Organization, actor, **changes: Any) -> Organization:
    """Change the organisation's ``name``, ``slug``, ``currency`` (the code its costs are shown in)
    and/or ``one_person_activation`` (whether an admin or owner may approve their own request to
    activate a release: agents.activation). The doors allow it to owners; changing
    ``one_person_activation`` also needs a fresh second factor (``prisma_glow.policy.STEP_UP``).
    Audited ``organization.update`` with before and after."""
    if "one_person_activation" in changes and not isinstance(changes["one_person_activation"], bool):
        raise ValidationError({"one_person_activation": ["Must be true or false."]})
    unknown = sorted(set(changes) - set(ORGANIZATION_EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"organization_update() got unexpected field(s): {', '.join(unknown)}")
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    return audited_update(
        organization, organization=organization, actor=actor, action="organization.update", fields=changes
    )


# --- Memberships --------------------------------------------------------------------------------


def _owner_count(organization: Organization) -> int:
    # Locks the owner rows, so two concurrent demotions cannot both see "another owner remains".
    return len(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Role.OWNER)
        .values_list("pk", flat=True)
    )


# Adding a member directly (POST /api/v1/members/) does not ask for their consent, so it takes only
# users who belong to no other organisation; everyone else is invited and joins by accepting
# (invitation_create). Unknown and foreign users get this same message, so that nothing tells which
# accounts exist in other firms.
USER_NOT_ADDABLE_MESSAGE = (
    "No user with this username or e-mail address can be added directly. Check the spelling; someone "
    "who belongs to another organisation, or has no account yet, joins by invitation "
    "(POST /api/v1/members/invite/)."
)


def _not_addable() -> ValidationError:
    # The code makes the API answer 404 (prisma_glow.api.errors.NOT_FOUND_CODES), like an unknown user.
    return ValidationError({"user": ValidationError(USER_NOT_ADDABLE_MESSAGE, code="does_not_exist")})


def _addable_users(organization: Organization | None, *, allow_members_elsewhere: bool):
    """Active users who may be added to ``organization``: its members (who answer "already a
    member") and users of no other organisation; everyone active with ``allow_members_elsewhere``."""
    users = get_user_model().objects.filter(is_active=True)
    if allow_members_elsewhere:
        return users
    memberships = Membership.objects.filter(user=OuterRef("pk"))
    if organization is None:
        return users.exclude(Exists(memberships))
    here = memberships.filter(organization=organization)
    elsewhere = memberships.exclude(organization=organization)
    return users.filter(Exists(here) | ~Exists(elsewhere))


@retry_on_conflict
@transaction.atomic
def membership_add(
    *,
    organization: Organization,
    actor,
    user,
    role: str = Role.VIEWER,
    allow_members_elsewhere: bool = False,
) -> Membership:
    """Make ``user`` a member of ``organization`` with ``role``.

    Raises ConflictError when the user is already a member, and the same ValidationError as for an
    unknown user (``USER_NOT_ADDABLE_MESSAGE``) when the user is inactive or belongs to another
    organisation, unless the user adds themself (the founder of a new organisation) or the system
    (``actor=None``, e.g. ``manage.py add_member``) passes ``allow_members_elsewhere=True``.
    """
    if allow_members_elsewhere and actor is not None:
        raise ValueError("Only the system (actor=None) may add a user who belongs to another organisation.")
    lock_for_write(organization=organization)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ConflictError(
            {"user": f"{user.get_username()} is already a member of {organization.name}."}, code="conflict"
        )
    adds_themself = getattr(actor, "pk", None) == user.pk and isinstance(actor, get_user_model())
    if not adds_themself and not (
        _addable_users(organization, allow_members_elsewhere=allow_members_elsewhere)
        .filter(pk=user.pk)
        .exists()
    ):
        raise _not_addable()
    membership = Membership(organization=organization, user=user, role=role)
    membership.full_clean()
    membership.save()
    audit_record(
        organization=organization,
        action="membership.add",
        actor=actor,
        obj=membership,
        after=snapshot(membership),
    )
    return membership


def _require_on_locked(access, operation: str, membership: Membership, **context) -> None:
    """The door asked the policy about the row it had read; the row may have changed since (another
    owner promoted the member meanwhile). Asked again about the locked row, so an admin never demotes
    or removes someone who has just become an owner."""
    if access is None:
        return
    decision = policy.decide(access, operation, membership, **context)
    if not decision:
        raise PermissionDenied(decision.reason)


@retry_on_conflict
@transaction.atomic
def membership_update(*, membership: Membership, actor, role: str, access=None) -> Membership:
    """Change a member's role. Demoting the organisation's last owner raises ConflictError.

    ``access`` (the caller's ``Access`` or ``AdminAccess``) has the permission policy asked again about
    the locked row; ``None`` for the system (management commands)."""
    lock_for_write(organization=membership.organization_id)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "organization")
        .get(pk=membership.pk)
    )
    _require_on_locked(access, "membership.change_role", membership, role=role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.organization) <= 1:
        raise ConflictError(
            {"role": "This is the organisation's last owner: make another member owner first."},
            code="conflict",
        )
    updated = audited_update(
        membership,
        organization=membership.organization,
        actor=actor,
        action="membership.update",
        fields={"role": role},
    )
    _revoke_invitations_beyond(
        membership=updated, actor=actor, role=role, reason="the inviter's role changed"
    )
    return updated


@retry_on_conflict
@transaction.atomic
def membership_remove(*, membership: Membership, actor, access=None) -> None:
    """Remove a member. Removing the organisation's last owner raises ConflictError.

    ``access``: as for ``membership_update``. The member's sessions end (every organisation's: a session
    is the user's, not a membership's)."""
    lock_for_write(organization=membership.organization_id)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "organization")
        .get(pk=membership.pk)
    )
    _require_on_locked(access, "membership.remove", membership)
    if membership.role == Role.OWNER and _owner_count(membership.organization) <= 1:
        raise ConflictError(
            "This is the organisation's last owner and cannot be removed: make another member owner first.",
            code="conflict",
        )
    before = snapshot(membership)
    organization = membership.organization
    audit_record(
        organization=organization,
        action="membership.remove",
        actor=actor,
        obj=membership,
        before=before,
    )
    _revoke_invitations_beyond(
        membership=membership, actor=actor, role=None, reason="the inviter was removed"
    )
    membership.delete()
    # The removed member is signed out everywhere, in this transaction: no page they have open keeps
    # working on what they held (ASVS V7.4.2).
    end_user_sessions(user=membership.user)


def _revoke_invitations_beyond(*, membership: Membership, actor, role: str | None, reason: str) -> None:
    """Revoke (audited) the open invitations ``membership``'s user sent in its organisation for roles
    that ``role`` (None: no longer a member) may not grant (``policy``'s ``membership.add``): a member
    removed or demoted leaves no link behind that brings people in with rights they no longer give."""
    user = membership.user
    inviter = SimpleNamespace(role=role, api_key=None, is_superuser=user.is_superuser)
    now = timezone.now()
    for invitation in (
        Invitation.objects.select_for_update()
        .open()
        .filter(organization=membership.organization_id, invited_by=user)
    ):
        if policy.allows(inviter, "membership.add", invitation, role=invitation.role):
            continue
        audited_update(
            invitation,
            organization=membership.organization,
            actor=actor,
            action="invitation.revoke",
            fields={"revoked_at": now},
            validate=None,
            snapshot_of=_invitation_snapshot,
            after_extra={"reason": reason},
        )


def user_find(identifier: str, *, organization: Organization | None, allow_members_elsewhere: bool = False):
    """The user whose username or e-mail address (case-insensitive) is ``identifier`` and who may be
    added to ``organization``, or None.

    Only active users who are members of ``organization`` already or of no other organisation are
    found, so that an unknown user and another firm's user look the same (see ``membership_add``);
    ``allow_members_elsewhere`` (the system's commands) finds any active user. An e-mail address
    shared by several users finds none of them. One query whatever the answer.
    """
    identifier = identifier.strip()
    if not identifier:
        return None
    by_email = Q(email__iexact=identifier) if "@" in identifier else Q(pk__in=[])
    addable = _addable_users(organization, allow_members_elsewhere=allow_members_elsewhere)
    candidates = list(
        get_user_model()
        .objects.filter(Q(username=identifier) | by_email, is_active=True)
        .annotate(
            is_username=Case(
                When(username=identifier, then=True), default=False, output_field=BooleanField()
            ),
            addable=Exists(addable.filter(pk=OuterRef("pk"))),
        )
        .order_by("-is_username", "pk")[:3]
    )
    if candidates and candidates[0].is_username:
        user = candidates[0]
    else:
        user = candidates[0] if len(candidates) == 1 else None  # an address shared by several: none
    return user if user is not None and user.addable else None


# --- API keys -----------------------------------------------------------------------------------


def _user_or_none(actor):
    if actor is None or isinstance(actor, APIKey) or not getattr(actor, "is_authenticated", False):
        return None
    return actor


def api_key_max_lifetime() -> timedelta:
    return timedelta(days=settings.API_KEY_MAX_DAYS)


def api_key_expiry(expires_at: datetime | None, *, now: datetime | None = None) -> datetime:
    """The expiry a new (or rotated) key gets: ``expires_at``, or the longest allowed when None.

    Every key expires within ``settings.API_KEY_MAX_DAYS``: a later expiry is refused rather than
    silently shortened, so that a client never believes its key lasts longer than it does. A past
    expiry is refused too. Raises ValidationError on ``expires_at`` (the API's 400, the form's error).
    """
    now = now or timezone.now()
    latest = now + api_key_max_lifetime()
    if expires_at is None:
        return latest
    if expires_at <= now:
        raise ValidationError(
            {"expires_at": ValidationError("The expiry must be in the future.", code="past")}
        )
    if expires_at > latest:
        raise ValidationError(
            {
                "expires_at": ValidationError(
                    f"A key can last at most {settings.API_KEY_MAX_DAYS} days: choose an expiry no later "
                    f"than {latest:%Y-%m-%d %H:%M} UTC, or leave it empty for the longest allowed.",
                    code="beyond_max",
                )
            }
        )
    return expires_at


@retry_on_conflict
@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    actor,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    rotated_from: APIKey | None = None,
) -> tuple[APIKey, str]:
    """Create a key; return it with its full value ``pg_<prefix>.<secret>`` (shown once, never stored).

    ``expires_at`` None gives the longest lifetime allowed; later than that, or in the past, raises
    ValidationError (``api_key_expiry``)."""
    expires_at = api_key_expiry(expires_at)
    lock_for_write(organization=organization)
    full_key, prefix, hashed = APIKey.generate()
    api_key = APIKey(
        organization=organization,
        name=name,
        scopes=_normalise_scopes(scopes),
        expires_at=expires_at,
        prefix=prefix,
        hashed_secret=hashed,
        created_by=_user_or_none(actor),
        rotated_from=rotated_from,
    )
    api_key.full_clean()
    api_key.save()
    audit_record(
        organization=organization,
        action="api_key.create",
        actor=actor,
        obj=api_key,
        after=snapshot(api_key),
    )
    return api_key, full_key


def _normalise_scopes(scopes):
    """Known scopes deduplicated in canonical order; anything else is left for ``clean()`` to reject."""
    if isinstance(scopes, (list, tuple, set)) and all(isinstance(s, str) for s in scopes):
        if set(scopes) <= set(Scope.values):
            return [s for s in Scope.values if s in scopes]
        return list(scopes)
    return scopes


def _lock_usable(api_key: APIKey, verb: str) -> APIKey:
    lock_for_write(organization=api_key.organization_id)
    api_key = APIKey.objects.select_for_update(of=("self",)).select_related("organization").get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise ConflictError(f"This API key has been revoked and cannot be {verb}.", code="conflict")
    if api_key.expires_at <= timezone.now():
        raise ConflictError(f"This API key has expired and cannot be {verb}.", code="conflict")
    return api_key


@retry_on_conflict
@transaction.atomic
def api_key_rotate(
    *, api_key: APIKey, actor, grace: timedelta = timedelta(0), expires_at: datetime | None = None
) -> tuple[APIKey, str]:
    """Replace a key with a new secret (same name and scopes); return the new key and its value.

    The new key starts a new lifetime: ``expires_at``, or the longest allowed when None; later than
    that, or in the past, raises ValidationError (``api_key_expiry``), as at creation.

    The old key stays valid for ``grace`` (zero: it stops working at once) and is then rejected as
    expired. A predecessor still in the grace period of an earlier rotation stops working now: at
    most two secrets of one key are ever valid, the newest and the one being phased out. A key
    already rotated, revoked or expired cannot be rotated (ConflictError).
    """
    if grace < timedelta(0):
        raise ValidationError({"grace_seconds": "The grace period cannot be negative."})
    expires_at = api_key_expiry(expires_at)
    old = _lock_usable(api_key, "rotated")
    if APIKey.objects.filter(rotated_from=old).exists():
        raise ConflictError("This API key has already been rotated; rotate its successor.", code="conflict")
    now = timezone.now()
    ended_predecessors = []
    predecessor = old.rotated_from
    while predecessor is not None:
        if predecessor.is_usable:
            predecessor.expires_at = now
            predecessor.save(update_fields=["expires_at", "updated_at"])
            ended_predecessors.append(predecessor.pk)
        predecessor = predecessor.rotated_from
    new, full_key = api_key_create(
        organization=old.organization,
        actor=actor,
        name=old.name,
        scopes=list(old.scopes),
        expires_at=expires_at,
        rotated_from=old,
    )
    cutoff = now + grace
    audited_update(
        old,
        organization=old.organization,
        actor=actor,
        action="api_key.rotate",
        fields={"expires_at": min(old.expires_at, cutoff)},
        validate=None,
        after_extra={
            "rotated_to": new.pk,
            "grace_seconds": int(grace.total_seconds()),
            "grace_ended_for": ended_predecessors,
        },
    )
    return new, full_key


@retry_on_conflict
@transaction.atomic
def api_key_revoke(*, api_key: APIKey, actor) -> APIKey:
    """Revoke a key at once. Revoking a key that is already revoked raises ConflictError."""
    lock_for_write(organization=api_key.organization_id)
    api_key = APIKey.objects.select_for_update(of=("self",)).select_related("organization").get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise ConflictError("This API key is already revoked.", code="conflict")
    return audited_update(
        api_key,
        organization=api_key.organization,
        actor=actor,
        action="api_key.revoke",
        fields={"revoked_at": timezone.now()},
        validate=None,
    )


# --- Invitations --------------------------------------------------------------------------------
# A colleague joins through an e-mailed one-time link (ASVS V6.4): whether the address belongs to an
# account is never part of the inviter's answer, nor of the e-mail, which reads the same for both.


class InvitationNotSent(ValidationError):
    """The e-mail server refused or could not be reached: nothing was recorded (the API's 503)."""


INVITATION_NOT_SENT_MESSAGE = (
    "The invitation e-mail could not be sent, so no invitation was recorded. Try again in a moment; "
    "if it keeps failing, ask the site operator to check the e-mail settings (DJANGO_EMAIL_HOST…)."
)
INVITATION_UNKNOWN_MESSAGE = (
    "This invitation link is not valid. Check that you copied the whole link from the e-mail, or ask "
    "for a new invitation."
)


def _require(access, operation: str, obj=None, **context) -> None:
    """Ask the permission policy again inside the transaction (see ``_require_on_locked``)."""
    if access is None:
        return
    decision = policy.decide(access, operation, obj, **context)
    if not decision:
        raise PermissionDenied(decision.reason)


def console_email() -> bool:
    """Whether e-mail is only printed by the server (development): then, and only then, the inviter's
    answer may carry the link, so that `make run` users can follow it."""
    return settings.MAILERS.get("default", {}).get("BACKEND") == settings.EMAIL_CONSOLE_BACKEND


def invitation_lifetime() -> timedelta:
    return timedelta(hours=settings.INVITATION_HOURS)


def invitation_link(*, site_url: str, token: str) -> str:
    """The absolute accept link: ``site_url`` (scheme and host of the request being served)."""
    return site_url.rstrip("/") + reverse("invitation-accept", kwargs={"token": token})


def _inviter_name(actor, organization: Organization) -> str:
    user = _user_or_none(actor)
    if user is None:
        return f"An administrator of {organization.name}"
    return user.get_full_name() or user.get_username()


INVITATION_EMAIL = """{inviter} invited you to join {organization} on Prisma Glow as {role}.

To accept, open this link:

{link}

It works once, for {hours} hours (until {expires:%d %b %Y, %H:%M} UTC). If you have no account yet, \
you will choose a username and a password there; if you already have one, sign in with it to accept.

If you did not expect this invitation, ignore this message: nothing happens unless the link is \
opened and accepted.
"""


def _send_invitation(invitation: Invitation, *, link: str, inviter: str) -> None:
    """E-mail the link (plain text: nothing in it is HTML). The text does not depend on whether the
    address has an account."""
    organization = invitation.organization.name
    body = INVITATION_EMAIL.format(
        inviter=inviter,
        organization=organization,
        role=invitation.get_role_display().lower(),
        link=link,
        hours=settings.INVITATION_HOURS,
        expires=invitation.expires_at,
    )
    # One line: a name with a line break must not end the header (header injection).
    subject = " ".join(f"{inviter} invited you to {organization} on Prisma Glow".split())
    try:
        send_mail(subject, body, None, [invitation.email])
    except (OSError, smtplib.SMTPException) as exc:
        raise InvitationNotSent(INVITATION_NOT_SENT_MESSAGE, code="not_sent") from exc


def _clean_email(email: str) -> str:
    email = get_user_model().objects.normalize_email(str(email or "").strip())
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(
            {
                "email": ValidationError(
                    "Enter a valid e-mail address, e.g. mira@firm.example.", code="invalid"
                )
            }
        ) from None
    return email


@retry_on_conflict
@transaction.atomic
def invitation_create(
    *, organization: Organization, actor, email: str, role: str, site_url: str, access=None
) -> tuple[Invitation, str]:
    """Invite ``email`` to join ``organization`` with ``role``; e-mail the link; return the invitation
    and the link (the door shows it only while the console e-mail backend is active).

    The answer is the same whether or not an account uses the address. An open invitation to the same
    address is replaced (revoked, audited): re-inviting is how a lost or expired link is renewed. A
    current member's address raises ConflictError (the members list shows it anyway). ``access`` has
    the policy asked (``membership.add`` with the role, and with the role of a replaced invitation:
    only owners invite owners). A failed e-mail raises ``InvitationNotSent`` and records nothing.
    """
    email = _clean_email(email)
    if role not in Role.values:
        raise ValidationError(
            {"role": ValidationError("Choose owner, admin, editor or viewer.", code="invalid")}
        )
    _require(access, "membership.add", role=role)
    lock_for_write(organization=organization)
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ConflictError(
            {"email": f"{email} is already a member of {organization.name}: change their role instead."},
            code="conflict",
        )
    now = timezone.now()
    for previous in (
        Invitation.objects.select_for_update().open().filter(organization=organization, email__iexact=email)
    ):
        _require(access, "membership.add", previous, role=previous.role)
        audited_update(
            previous,
            organization=organization,
            actor=actor,
            action="invitation.revoke",
            fields={"revoked_at": now},
            validate=None,
            snapshot_of=_invitation_snapshot,
            after_extra={"reason": "replaced by a new invitation"},
        )
    token, token_hash = Invitation.generate()
    invitation = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by=_user_or_none(actor),
        expires_at=now + invitation_lifetime(),
    )
    invitation.full_clean()
    invitation.save()
    audit_record(
        organization=organization,
        action="invitation.create",
        actor=actor,
        obj=invitation,
        after=_invitation_snapshot(invitation),
    )
    link = invitation_link(site_url=site_url, token=token)
    _send_invitation(invitation, link=link, inviter=_inviter_name(actor, organization))
    return invitation, link


def _invitation_snapshot(invitation: Invitation) -> dict:
    return snapshot(invitation, exclude=("token_hash",))


def _lock_invitation(token: str) -> Invitation:
    """The invitation of ``token``, locked, if its link still works; otherwise a refusal saying why."""
    found = invitation_by_token(token)
    if found is None:
        raise ValidationError(INVITATION_UNKNOWN_MESSAGE, code="does_not_exist")
    lock_for_write(organization=found.organization_id)
    invitation = (
        Invitation.objects.select_for_update(of=("self",)).select_related("organization").get(pk=found.pk)
    )
    refusal = invitation_refusal(invitation)
    if refusal:
        raise ConflictError(refusal, code="conflict")
    return invitation


def invitation_refusal(invitation: Invitation) -> str:
    """Why ``invitation``'s link no longer works (empty when it does), in words for the invitee."""
    organization = invitation.organization.name
    state = invitation.state
    if state == InvitationState.ACCEPTED:
        return f"This invitation to {organization} has already been used. Sign in to reach it."
    if state == InvitationState.REVOKED:
        return (
            f"This invitation to {organization} was withdrawn (perhaps replaced by a newer one). "
            "Use the link of the latest e-mail, or ask for a new invitation."
        )
    if state == InvitationState.EXPIRED:
        return (
            f"This invitation to {organization} expired on {invitation.expires_at:%d %b %Y at %H:%M} UTC. "
            "Ask whoever invited you to send a new one."
        )
    return ""


def _accept(invitation: Invitation, user, *, new_account: bool) -> Membership:
    membership = membership_add(
        organization=invitation.organization, actor=user, user=user, role=invitation.role
    )
    if not user.is_staff:
        # Members work in the staff UI; an account invited by a firm becomes a staff account.
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    audited_update(
        invitation,
        organization=invitation.organization,
        actor=user,
        action="invitation.accept",
        fields={"accepted_at": timezone.now(), "accepted_by": user},
        validate=None,
        snapshot_of=_invitation_snapshot,
        after_extra={"new_account": new_account},
    )
    return membership


@retry_on_conflict
@transaction.atomic
def invitation_accept(*, token: str, user) -> Membership:
    """``user`` (signed in) accepts the invitation of ``token``: they become a member with its role.

    The invitation must be for ``user``'s e-mail address (case-insensitively); another signed-in user
    is refused (PermissionDenied) and the invitation stays open. A used, revoked or expired link
    raises ConflictError with the reason; an unknown one ValidationError (``does_not_exist``).
    """
    invitation = _lock_invitation(token)
    if not user.is_authenticated or (user.email or "").casefold() != invitation.email.casefold():
        raise PermissionDenied(
            f"This invitation was sent to {invitation.email}, and you are signed in as "
            f"{user.get_username()}. Sign out, then sign in with the account of that address."
        )
    return _accept(invitation, user, new_account=False)


@retry_on_conflict
@transaction.atomic
def invitation_sign_up(
    *, token: str, username: str, password: str, first_name: str = "", last_name: str = ""
):
    """Create the account of an invitee who has none (the link proves they read the address's mail)
    and make it a member with the invitation's role; return the user, who then signs in normally
    (the second factor is enrolled at that sign-in when required).

    The account is a staff account with the invitation's address and a password that passes Django's
    validators (``AUTH_PASSWORD_VALIDATORS``). When an account with that address exists, it must sign
    in and accept instead (ConflictError).
    """
    invitation = _lock_invitation(token)
    User = get_user_model()
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ConflictError(
            "An account with this e-mail address already exists: sign in with it to accept the invitation.",
            code="conflict",
        )
    username = str(username or "").strip()
    if username and User.objects.filter(username__iexact=username).exists():
        raise ValidationError(
            {"username": ValidationError("This username is taken: choose another.", code="taken")}
        )
    user = User(
        username=username,
        email=invitation.email,
        first_name=str(first_name or "").strip(),
        last_name=str(last_name or "").strip(),
        is_staff=True,
    )
    errors = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    _accept(invitation, user, new_account=True)
    return user


@retry_on_conflict
@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor, access=None) -> Invitation:
    """Withdraw an open invitation: its link stops working at once. An accepted or already revoked one
    raises ConflictError; ``access`` as for ``invitation_create`` (an owner's invitation: owners)."""
    lock_for_write(organization=invitation.organization_id)
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=invitation.pk)
    )
    _require(access, "membership.add", invitation, role=invitation.role)
    if invitation.accepted_at is not None:
        raise ConflictError("This invitation has been accepted; remove the member instead.", code="conflict")
    if invitation.revoked_at is not None:
        raise ConflictError("This invitation is already revoked.", code="conflict")
    return audited_update(
        invitation,
        organization=invitation.organization,
        actor=actor,
        action="invitation.revoke",
        fields={"revoked_at": timezone.now()},
        validate=None,
        snapshot_of=_invitation_snapshot,
    )
