"""Organisations, their members and their API keys: the boundary every other row lives inside."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from prisma_glow.config_stamp import new_stamp
from prisma_glow.display import CURRENCIES, DEFAULT_CURRENCY
from prisma_glow.models import TimeStampedModel


class Organization(TimeStampedModel):
    """A firm (or a practice of it). Every agent, document, key and execution belongs to one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(
        max_length=60,
        unique=True,
        error_messages={"unique": "An organisation with this slug already exists."},
    )
    config_stamp = models.UUIDField(
        default=new_stamp,
        editable=False,
        help_text="Replaced whenever the configuration of one of its agents changes "
        "(prisma_glow.config_stamp); the runtime's cache of loaded agents is valid only under it.",
    )
    currency = models.CharField(
        max_length=3,
        choices=CURRENCIES,
        default=DEFAULT_CURRENCY,
        help_text="The currency of your providers' prices: every cost and budget is shown in it "
        "(nothing is converted).",
    )

    one_person_activation = models.BooleanField(
        default=False,
        help_text="Let an admin or owner approve their own request to activate an agent's release (small "
        "teams). Off: a second admin or owner must approve (four eyes). The gates and the second-factor "
        "check apply either way.",
    )

    #: How a row reaches its organisation: it is one (scoping of the staff UI).
    organization_path = "pk"

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__in=[code for code, _ in CURRENCIES]),
                name="organization_currency_valid",
                violation_error_message="Unknown currency.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# Higher rank includes every right of the lower ranks.
ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Membership(TimeStampedModel):
    """A user's role in one organisation (viewer < editor < admin < owner)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"

    class Meta:
        ordering = ["organization", "user"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"],
                name="membership_unique_user_org",
                violation_error_message="This user is already a member of the organisation.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values),
                name="membership_role_valid",
                violation_error_message="Unknown role.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.organization} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    EXECUTE = "execute", "Execute"
    ADMIN = "admin", "Admin"


KEY_PREFIX_LENGTH = 8
KEY_MARKER = "pg"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret. A slow password hash adds nothing for 256-bit random keys."""
    return hashlib.sha256(secret.encode()).hexdigest()


class APIKeyQuerySet(models.QuerySet):
    def usable(self, at=None):
        at = at or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=at)

    def expiring_soon(self, at=None):
        """Usable keys that expire within ``settings.API_KEY_WARN_DAYS`` (soonest first)."""
        at = at or timezone.now()
        return self.usable(at).filter(expires_at__lte=at + api_key_warn_period()).order_by("expires_at", "id")


def api_key_warn_period() -> timedelta:
    return timedelta(days=settings.API_KEY_WARN_DAYS)


class APIKey(TimeStampedModel):
    """A credential for API clients: ``pg_<prefix>.<secret>``; only the prefix and a hash are stored.

    A key belongs to one organisation and carries scopes. Every key expires, at most
    ``settings.API_KEY_MAX_DAYS`` after it is created or rotated (``tenancy.services.api_key_expiry``).
    Rotation creates a new key (``rotated_from`` points at the old one) and lets the old one expire
    after a grace period.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_secret = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(help_text="When the key stops working; every key has one.")
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Recorded at most once a minute (prisma_glow.api.authentication)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    objects = APIKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({KEY_MARKER}_{self.prefix}…)"

    def clean(self) -> None:
        if not isinstance(self.scopes, list) or not self.scopes:
            raise ValidationError({"scopes": "Give at least one scope: read, write, execute or admin."})
        unknown = sorted(set(map(str, self.scopes)) - set(Scope.values))
        if unknown:
            raise ValidationError(
                {"scopes": f"Unknown scope(s): {', '.join(unknown)}. Use read, write, execute, admin."}
            )

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return ``(full_key, prefix, hashed_secret)`` for a new key; the full key is shown once."""
        prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        return f"{KEY_MARKER}_{prefix}.{secret}", prefix, hash_secret(secret)

    @staticmethod
    def split(full_key: str) -> tuple[str, str] | None:
        """Split ``pg_<prefix>.<secret>`` into its parts, or None when it is not of that shape."""
        marker, _, rest = full_key.partition("_")
        prefix, dot, secret = rest.partition(".")
        if marker != KEY_MARKER or not dot or len(prefix) != KEY_PREFIX_LENGTH or not secret:
            return None
        return prefix, secret

    def check_secret(self, secret: str) -> bool:
        return hmac.compare_digest(self.hashed_secret, hash_secret(secret))

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at is not None and self.expires_at > timezone.now()

    @property
    def expires_soon(self) -> bool:
        """Usable, but within ``settings.API_KEY_WARN_DAYS`` of its expiry: time to rotate it."""
        return self.is_usable and self.expires_at <= timezone.now() + api_key_warn_period()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


class InvitationState(models.TextChoices):
    """Where an invitation stands (derived from its dates, never stored)."""

    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class InvitationQuerySet(models.QuerySet):
    def open(self):
        """Neither accepted nor revoked (expired ones included: re-inviting replaces them)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def pending(self, at=None):
        """Open and not yet expired: the link still works."""
        return self.open().filter(expires_at__gt=at or timezone.now())


class Invitation(TimeStampedModel):
    """An invitation to join an organisation with a role, sent by e-mail as a one-time link.

    Only a hash of the link's secret is stored (``token_hash``, SHA-256 as for API keys: the secret
    carries 256 random bits); the link is e-mailed and never shown again. It works once, until
    ``expires_at`` (``settings.INVITATION_HOURS`` after it is sent), and not after it is accepted or
    revoked. An organisation has at most one open invitation per address (case-insensitively):
    inviting the same address again replaces it (``tenancy.services.invitation_create``).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(help_text="When the link stops working.")
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "organization",
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_address",
                violation_error_message="This address already has an open invitation to the organisation.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=Role.values),
                name="invitation_role_valid",
                violation_error_message="Unknown role.",
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
                violation_error_message="An invitation is either accepted or revoked, not both.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.email} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at <= timezone.now():
            return InvitationState.EXPIRED
        return InvitationState.PENDING

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return ``(token, token_hash)`` for a new link: the token goes in the e-mail, the hash here."""
        token = secrets.token_urlsafe(32)
        return token, hash_secret(token)
