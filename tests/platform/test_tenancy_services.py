"""Tenancy services: audited with before/after, atomic, and guarding the last owner."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_verify_chain
from prisma_glow.exceptions import ConflictError
from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import APIKey, Membership, Organization
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_organization_create_with_owner_is_audited():
    user = UserFactory(username="founder")
    org = services.organization_create(name="New Firm", slug="new-firm", actor=user, owner=user)
    assert Membership.objects.get(organization=org).role == "owner"
    assert list(
        AuditEvent.objects.filter(organization=org).order_by("id").values_list("action", flat=True)
    ) == [
        "organization.create",
        "membership.add",
    ]
    assert audit_verify_chain(org) == []


def test_organization_update_validates_and_records_before_after(org, owner, other_org):
    services.organization_update(organization=org, actor=owner, name="Renamed")
    event = AuditEvent.objects.get(action="organization.update")
    assert (event.before["name"], event.after["name"], event.actor_user) == ("Demo Firm", "Renamed", owner)
    with pytest.raises(ValidationError):
        services.organization_update(organization=org, actor=owner, slug="other-firm")
    with pytest.raises(TypeError):
        services.organization_update(organization=org, actor=owner, created_at=timezone.now())


def test_membership_add_duplicate_conflict(org, editor):
    with pytest.raises(ConflictError):
        services.membership_add(organization=org, actor=None, user=editor, role="viewer")
    with pytest.raises(ValidationError):
        services.membership_add(organization=org, actor=None, user=UserFactory(username="x"), role="emperor")


def test_last_owner_is_guarded(org, owner):
    membership = Membership.objects.get(user=owner)
    with pytest.raises(ConflictError):
        services.membership_update(membership=membership, actor=owner, role="admin")
    with pytest.raises(ConflictError):
        services.membership_remove(membership=membership, actor=owner)
    second = MembershipFactory(organization=org, role="owner")
    services.membership_remove(membership=membership, actor=second.user)
    assert not Membership.objects.filter(pk=membership.pk).exists()
    event = AuditEvent.objects.get(action="membership.remove")
    assert event.before["role"] == "owner" and event.after is None


def test_a_failing_audit_rolls_the_change_back(org, owner):
    """Change and audit row commit together: if the audit write fails, the change is undone."""
    membership = MembershipFactory(organization=org, role="viewer")
    with mock.patch("prisma_glow.audit.services.audit_record", side_effect=RuntimeError("disk full")):
        with pytest.raises(RuntimeError):
            services.membership_update(membership=membership, actor=owner, role="admin")
    membership.refresh_from_db()
    assert membership.role == "viewer"


def test_api_key_create_validates(org, owner):
    key, full = services.api_key_create(
        organization=org, actor=owner, name="CI", scopes=["write", "read", "read"]
    )
    assert key.scopes == ["read", "write"] and key.created_by == owner
    assert APIKey.split(full)[0] == key.prefix and key.check_secret(APIKey.split(full)[1])
    for scopes in ([], ["fly"], "read"):
        with pytest.raises(ValidationError):
            services.api_key_create(organization=org, actor=owner, name="Bad", scopes=scopes)
    with pytest.raises(ValidationError):
        services.api_key_create(
            organization=org,
            actor=owner,
            name="Past",
            scopes=["read"],
            expires_at=timezone.now() - timedelta(1),
        )


def test_api_key_rotate_grace_and_a_new_lifetime(org, owner, settings):
    """Rotation keeps name and scopes and starts a new lifetime (API_KEY_MAX_DAYS), not the old expiry."""
    expiry = timezone.now() + timedelta(days=10)
    old = APIKeyFactory(organization=org, scopes=["read"], expires_at=expiry)
    new, full = services.api_key_rotate(api_key=old, actor=owner, grace=timedelta(hours=1))
    old.refresh_from_db()
    assert new.rotated_from == old and new.scopes == ["read"]
    lifetime = timedelta(days=settings.API_KEY_MAX_DAYS)
    assert lifetime - timedelta(minutes=1) < new.expires_at - timezone.now() <= lifetime
    assert timedelta(minutes=59) < old.expires_at - timezone.now() <= timedelta(hours=1)
    with pytest.raises(ConflictError):
        services.api_key_rotate(api_key=old, actor=owner)
    with pytest.raises(ValidationError):
        services.api_key_rotate(api_key=new, actor=owner, grace=timedelta(seconds=-1))
    # A grace longer than the remaining life does not extend it.
    short = APIKeyFactory(organization=org, scopes=["read"], expires_at=timezone.now() + timedelta(minutes=5))
    services.api_key_rotate(api_key=short, actor=owner, grace=timedelta(days=1))
    short.refresh_from_db()
    assert short.expires_at <= timezone.now() + timedelta(minutes=5)


def test_api_key_revoke(org, owner):
    key = APIKeyFactory(organization=org, scopes=["read"])
    services.api_key_revoke(api_key=key, actor=owner)
    assert not APIKey.objects.usable().filter(pk=key.pk).exists()
    with pytest.raises(ConflictError):
        services.api_key_revoke(api_key=key, actor=owner)
    with pytest.raises(ConflictError):
        services.api_key_rotate(api_key=key, actor=owner)


def test_user_find(db):
    user = UserFactory(username="priya", email="Priya@Example.com")
    UserFactory(username="inactive", email="gone@example.com", is_active=False)
    assert services.user_find("priya", organization=None) == user
    assert services.user_find(" priya@example.COM ", organization=None) == user
    assert services.user_find("gone@example.com", organization=None) is None
    assert services.user_find("", organization=None) is None
    assert Organization.objects.count() == 0


def test_rotating_again_ends_the_grace_of_the_previous_secret(org, owner):
    """At most two secrets of a key are valid: the newest and the one being phased out."""
    first = APIKeyFactory(organization=org, scopes=["read"])
    second, _ = services.api_key_rotate(api_key=first, actor=owner, grace=timedelta(days=7))
    first.refresh_from_db()
    assert first.is_usable
    third, _ = services.api_key_rotate(api_key=second, actor=owner, grace=timedelta(hours=1))
    first.refresh_from_db()
    second.refresh_from_db()
    assert not first.is_usable and second.is_usable and third.is_usable
    event = AuditEvent.objects.filter(action="api_key.rotate", object_id=str(second.pk)).get()
    assert event.after["grace_ended_for"] == [first.pk]


def test_the_policy_is_asked_again_about_the_locked_membership(org, owner):
    """An admin's door read an editor's membership; an owner promoted that member meanwhile. The
    demotion or removal the admin then sends is refused on the locked row, and nothing changes."""
    from prisma_glow.admin.scoping import AdminAccess

    admin = AdminAccess(organization=org, role="admin", is_superuser=False)
    read_by_the_door = MembershipFactory(
        user=UserFactory(username="promoted"), organization=org, role="editor"
    )
    services.membership_update(membership=read_by_the_door, actor=owner, role="owner")  # meanwhile
    with pytest.raises(PermissionDenied, match="owner"):
        services.membership_update(membership=read_by_the_door, actor=None, role="viewer", access=admin)
    with pytest.raises(PermissionDenied, match="owner"):
        services.membership_remove(membership=read_by_the_door, actor=None, access=admin)
    read_by_the_door.refresh_from_db()
    assert read_by_the_door.role == "owner"
    # An owner's access may; the system (access=None) is not asked.
    owner_access = AdminAccess(organization=org, role="owner", is_superuser=False)
    services.membership_update(membership=read_by_the_door, actor=owner, role="editor", access=owner_access)
    services.membership_remove(membership=read_by_the_door, actor=None)
