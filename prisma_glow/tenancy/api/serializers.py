"""Serializers for API keys, members and the organisation."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from prisma_glow.tenancy.models import APIKey, Invitation, Membership, Organization, Role, Scope
from prisma_glow.tenancy.services import USER_NOT_ADDABLE_MESSAGE, api_key_expiry, user_find

MAX_GRACE = timedelta(days=30)


class APIKeySerializer(serializers.ModelSerializer):
    """An API key as listed: its public prefix and metadata, never its secret."""

    prefix = serializers.SerializerMethodField(help_text="The key's public part, `pg_<prefix>`.")
    status = serializers.SerializerMethodField(help_text="`active`, `expired` or `revoked`.")
    created_by = serializers.SerializerMethodField(
        help_text="Who created the key (null: a command or a key)."
    )
    rotated_to = serializers.SerializerMethodField(help_text="The key that replaced this one, if rotated.")
    expires_soon = serializers.BooleanField(
        read_only=True,
        help_text="Active and within PRISMA_GLOW_API_KEY_WARN_DAYS (default 14) of its expiry: rotate it.",
    )

    class Meta:
        model = APIKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "status",
            "created_at",
            "created_by",
            "expires_at",
            "expires_soon",
            "last_used_at",
            "revoked_at",
            "rotated_from",
            "rotated_to",
        ]
        read_only_fields = fields

    def get_prefix(self, obj: APIKey) -> str:
        return f"pg_{obj.prefix}"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, obj: APIKey) -> str | None:
        return obj.created_by.get_username() if obj.created_by_id else None

    def get_status(self, obj: APIKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        if obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_rotated_to(self, obj: APIKey) -> int | None:
        successor = getattr(obj, "rotated_to", None)
        return successor.pk if successor is not None else None


EXPIRES_AT_HELP = (
    "When the key stops working: in the future and at most PRISMA_GLOW_API_KEY_MAX_DAYS (default 90) "
    "days away; empty or null: that maximum. A later expiry is refused (400), not shortened."
)


def validate_expiry(value):
    """The service's rule (``services.api_key_expiry``), checked here too so that a 400 lists every
    field's error at once."""
    try:
        api_key_expiry(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict["expires_at"])
    return value


class APIKeyCreateSerializer(serializers.Serializer):
    """What a new key needs: a name, its scopes and, optionally, an expiry within the allowed lifetime
    (checked by ``services.api_key_expiry``)."""

    name = serializers.CharField(max_length=100, help_text="What the key is for, e.g. 'Client portal'.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices),
        min_length=1,
        max_length=len(Scope.choices),
        help_text="Any of read, write, execute, admin (admin implies the others).",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text=EXPIRES_AT_HELP)

    def validate_expires_at(self, value):
        return validate_expiry(value)


class APIKeyCreatedSerializer(APIKeySerializer):
    """A key just created or rotated, with its full value: shown this once, never again."""

    key = serializers.CharField(
        read_only=True, help_text="The full key `pg_<prefix>.<secret>`. Store it now: it is not shown again."
    )

    class Meta(APIKeySerializer.Meta):
        fields = [*APIKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class APIKeyRotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=int(MAX_GRACE.total_seconds()),
        default=0,
        help_text="How long the old key keeps working (0, the default: it stops at once; at most 30 days).",
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="The new key's expiry. " + EXPIRES_AT_HELP
    )

    def validate_expires_at(self, value):
        return validate_expiry(value)


class MembershipSerializer(serializers.ModelSerializer):
    """A member of the organisation and their role."""

    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "name", "role", "created_at", "updated_at"]
        read_only_fields = ["id", "user", "username", "email", "name", "created_at", "updated_at"]

    def get_name(self, obj: Membership) -> str:
        return obj.user.get_full_name()


class MembershipCreateSerializer(serializers.Serializer):
    """Add an existing user (by username or e-mail address) with a role.

    Needs ``context["organization"]``. A user who belongs to another organisation cannot be added
    yet and is answered exactly like an unknown one (404), so the API tells no one which accounts
    exist in other firms.
    """

    user = serializers.CharField(
        max_length=254,
        help_text="The username or e-mail address of a user who belongs to no other organisation.",
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)

    def validate_user(self, value: str):
        user = user_find(value, organization=self.context["organization"])
        if user is None:
            raise serializers.ValidationError(USER_NOT_ADDABLE_MESSAGE, code="does_not_exist")
        return user


class InvitationCreateSerializer(serializers.Serializer):
    """Invite a colleague by e-mail address, with the role they will have."""

    email = serializers.EmailField(max_length=254, help_text="The colleague's e-mail address.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as listed: never its link (only a hash of the link's secret is stored)."""

    state = serializers.ChoiceField(
        choices=["pending", "accepted", "revoked", "expired"],
        read_only=True,
        help_text="Derived from the dates.",
    )
    invited_by = serializers.SerializerMethodField(help_text="Who sent it (null: a command or a key).")
    accepted_by = serializers.SerializerMethodField(help_text="The account that accepted it.")

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "state",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "accepted_by",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_invited_by(self, obj: Invitation) -> str | None:
        return obj.invited_by.get_username() if obj.invited_by_id else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_accepted_by(self, obj: Invitation) -> str | None:
        return obj.accepted_by.get_username() if obj.accepted_by_id else None


class InvitationSentSerializer(serializers.Serializer):
    """The inviter's answer: the same whether or not an account uses the address."""

    id = serializers.IntegerField(help_text="The invitation, to list or revoke it.")
    email = serializers.EmailField()
    role = serializers.CharField()
    expires_at = serializers.DateTimeField()
    message = serializers.CharField()
    link = serializers.CharField(
        required=False,
        help_text="Only while the console e-mail backend is active (development): the link the e-mail "
        "carries. Never present otherwise.",
    )


class MembershipUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class OrganizationSerializer(serializers.ModelSerializer):
    """The organisation the caller acts for."""

    role = serializers.SerializerMethodField(help_text="The caller's role (null for an API key).")
    scopes = serializers.SerializerMethodField(help_text="The API key's scopes (null for a member).")

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "currency",
            "one_person_activation",
            "role",
            "scopes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "role", "scopes", "created_at", "updated_at"]
        extra_kwargs = {
            "name": {"max_length": 200},
            "one_person_activation": {
                "help_text": "Whether an admin or owner may approve their own request to activate a release "
                "(small teams). Changing it needs a fresh second factor."
            },
        }

    def get_role(self, obj) -> str | None:
        access = self.context.get("access")
        return access.role if access is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_scopes(self, obj):
        access = self.context.get("access")
        return list(access.api_key.scopes) if access is not None and access.api_key is not None else None
