"""Writes on organisations, memberships and API keys.

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

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, When
from django.utils import timezone

from prisma_glow import policy
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict
from prisma_glow.sessions import end_user_sessions
from prisma_glow.tenancy.models import APIKey, Membership, Organization, Role, Scope

# --- Organisations ------------------------------------------------------------------------------


@transaction.atomic
def organization_create(*, name: str, slug: str, actor=None, owner=None) -> Organization:
    """Create an organisation; ``owner`` (a user), when given, becomes its first owner."""
    organization = Organization(name=name, slug=slug)
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


ORGANIZATION_EDITABLE_FIELDS = ("name", "slug")


@retry_on_conflict
@transaction.atomic
def organization_update(*, organization: Organization, actor, **changes: Any) -> Organization:
    """Change the organisation's ``name`` and/or ``slug`` (the only editable fields)."""
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


# Until invitations exist, a member is added without their consent: organisations add only users
# who belong to no other organisation. Unknown and foreign users get this same message, so that
# nothing tells which accounts exist in other firms.
USER_NOT_ADDABLE_MESSAGE = (
    "No user with this username or e-mail address can be added. Check the spelling; someone who "
    "already belongs to another organisation can only be added by a site administrator "
    "(manage.py add_member)."
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
    return audited_update(
        membership,
        organization=membership.organization,
        actor=actor,
        action="membership.update",
        fields={"role": role},
    )


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
    membership.delete()
    # The removed member is signed out everywhere, in this transaction: no page they have open keeps
    # working on what they held (ASVS V7.4.2).
    end_user_sessions(user=membership.user)


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
