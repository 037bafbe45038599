"""Organisation, membership and API key invariants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from prisma_glow.tenancy.models import APIKey, Membership, Organization, Role
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid

pytestmark = pytest.mark.django_db


def test_organization_slug_is_unique():
    """A second organisation with the same slug is refused by the database and by full_clean."""
    OrganizationFactory(slug="acme")
    assert_db_rejects(lambda: Organization.objects.create(name="Acme 2", slug="acme"))
    assert_invalid(
        Organization(name="Acme 2", slug="acme"),
        "An organisation with this slug already exists.",
        field="slug",
    )


def test_organization_slug_must_be_a_slug():
    """Spaces and punctuation are not accepted in a slug."""
    assert_invalid(Organization(name="Acme", slug="acme firm!"), "valid", field="slug")


def test_membership_is_unique_per_user_and_organization(org):
    """A user has one role per organisation; the same user may belong to another organisation."""
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=Role.EDITOR)
    assert_db_rejects(lambda: Membership.objects.create(user=user, organization=org, role=Role.VIEWER))
    assert_conflict(
        Membership(user=user, organization=org, role=Role.VIEWER),
        "This user is already a member of the organisation.",
        field="user",
    )
    other = OrganizationFactory()
    Membership(user=user, organization=other, role=Role.OWNER).full_clean()


def test_membership_role_must_be_known(org):
    """Only owner, admin, editor and viewer are roles."""
    user = UserFactory()
    assert_db_rejects(lambda: Membership.objects.create(user=user, organization=org, role="superuser"))
    assert_invalid(
        Membership(user=user, organization=org, role="superuser"),
        "Value 'superuser' is not a valid choice.",
        field="role",
    )


@pytest.mark.parametrize(
    ("role", "minimum", "expected"),
    [
        (Role.OWNER, Role.ADMIN, True),
        (Role.ADMIN, Role.ADMIN, True),
        (Role.EDITOR, Role.ADMIN, False),
        (Role.VIEWER, Role.EDITOR, False),
        (Role.VIEWER, Role.VIEWER, True),
    ],
)
def test_membership_role_ranks(role, minimum, expected):
    """A higher role includes every right of the lower ones."""
    assert Membership(role=role).has_role(minimum) is expected


def test_api_key_needs_at_least_one_scope(org):
    """A key without scopes (or with scopes that are not a list) is invalid."""
    for scopes in ([], "read", None):
        key = APIKey(
            organization=org, name="portal", prefix="abcd1234", hashed_secret="x" * 64, scopes=scopes
        )
        assert_invalid(
            key,
            "Give at least one scope: read, write, execute or admin.",
            field="scopes",
            exclude=["scopes"] if scopes is None else None,
        )


def test_api_key_rejects_unknown_scopes(org):
    """Unknown scopes are named in the message."""
    key = APIKey(
        organization=org, name="portal", prefix="abcd1234", hashed_secret="x" * 64, scopes=["read", "sudo"]
    )
    assert_invalid(key, "Unknown scope(s): sudo. Use read, write, execute, admin.", field="scopes")


def test_api_key_prefix_is_unique(org):
    """Two keys never share a prefix (the prefix is how a key is looked up)."""
    first = APIKeyFactory(organization=org)
    assert_db_rejects(
        lambda: APIKey.objects.create(
            organization=org, name="dup", prefix=first.prefix, hashed_secret="y" * 64, scopes=["read"]
        )
    )


def test_api_key_generate_split_and_check():
    """A generated key splits into prefix and secret, and only its own secret matches the hash."""
    full, prefix, hashed = APIKey.generate()
    assert full.startswith(f"pg_{prefix}.")
    assert APIKey.split(full) == (prefix, full.split(".", 1)[1])
    key = APIKey(prefix=prefix, hashed_secret=hashed)
    assert key.check_secret(full.split(".", 1)[1])
    assert not key.check_secret("wrong")
    assert hashed not in full


@pytest.mark.parametrize(
    "value", ["", "pg_short.secret", "xx_abcd1234.secret", "pg_abcd1234", "pg_abcd1234."]
)
def test_api_key_split_rejects_malformed_keys(value):
    """Anything not shaped ``pg_<8 chars>.<secret>`` is not a key."""
    assert APIKey.split(value) is None


def test_api_key_usability(org):
    """Revoked and expired keys are not usable; the queryset and the property agree."""
    now = timezone.now()
    live = APIKeyFactory(organization=org)
    expiring = APIKeyFactory(organization=org, expires_at=now + timedelta(hours=1))
    expired = APIKeyFactory(organization=org, expires_at=now - timedelta(seconds=1))
    revoked = APIKeyFactory(organization=org, revoked_at=now)
    assert set(APIKey.objects.usable()) == {live, expiring}
    assert [k.is_usable for k in (live, expiring, expired, revoked)] == [True, True, False, False]


def test_api_key_admin_scope_includes_the_others():
    """The admin scope grants every other scope; read does not grant execute."""
    assert APIKey(scopes=["admin"]).has_scope("execute")
    assert not APIKey(scopes=["read"]).has_scope("execute")
