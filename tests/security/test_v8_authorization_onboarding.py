"""ASVS 5.0 level 2, chapter V8 (Authorization), as far as onboarding colleagues goes: who may invite
and revoke, which roles they may give, and that no organisation reaches another's invitations."""

from __future__ import annotations

import pytest

from prisma_glow.tenancy.models import Invitation
from tests.conftest import client_for
from tests.factories import InvitationFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

INVITE = "/api/v1/members/invite/"


def test_v8_2_1_only_admins_and_owners_invite(org, viewer, editor, admin_user, mailoutbox):
    """ASVS 5.0 V8.2.1: viewers and editors cannot invite, list or revoke invitations through the API
    (403) or the admin (the admin's 403 page); admins can."""
    invitation = InvitationFactory(organization=org)
    for user in (viewer, editor):
        api = client_for(user)
        assert_error(api.post(INVITE, {"email": "x@firm.example"}, format="json"), 403)
        assert_error(api.get("/api/v1/invitations/"), 403)
        assert_error(api.post(f"/api/v1/invitations/{invitation.pk}/revoke/"), 403)
        web = login(user)
        assert (
            web.post(
                "/admin/tenancy/invitation/add/", {"email": "x@firm.example", "role": "viewer"}
            ).status_code
            == 403
        )
        assert web.post(f"/admin/tenancy/invitation/{invitation.pk}/revoke/").status_code == 403
    assert Invitation.objects.count() == 1 and Invitation.objects.get().revoked_at is None
    assert client_for(admin_user).post(INVITE, {"email": "x@firm.example"}, format="json").status_code == 202


def test_v8_2_1_only_owners_invite_owners(org, admin_user, owner, mailoutbox):
    """ASVS 5.0 V8.2.1: an admin cannot give the owner role by invitation (API 403; the admin's form
    offers no owner), nor revoke or replace an owner's invitation; an owner can."""
    assert_error(
        client_for(admin_user).post(INVITE, {"email": "boss@firm.example", "role": "owner"}, format="json"),
        403,
    )
    form = login(admin_user).get("/admin/tenancy/invitation/add/").content.decode()
    assert 'value="owner"' not in form
    theirs = InvitationFactory(organization=org, email="heir@firm.example", role="owner")
    assert_error(client_for(admin_user).post(f"/api/v1/invitations/{theirs.pk}/revoke/"), 403)
    replace = client_for(admin_user).post(
        INVITE, {"email": "heir@firm.example", "role": "viewer"}, format="json"
    )
    assert_error(replace, 403)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert (
        client_for(owner)
        .post(INVITE, {"email": "boss@firm.example", "role": "owner"}, format="json")
        .status_code
        == 202
    )


def test_v8_2_2_and_v8_4_1_another_organisations_invitations_are_404(org, other_org, owner):
    """ASVS 5.0 V8.2.2 / V8.4.1: an owner cannot see, read or revoke another organisation's
    invitation through either door (404), and it stays open."""
    theirs = InvitationFactory(organization=other_org)
    api = client_for(owner)
    assert theirs.email not in str(api.get("/api/v1/invitations/").json())
    assert_error(api.get(f"/api/v1/invitations/{theirs.pk}/"), 404)
    assert_error(api.post(f"/api/v1/invitations/{theirs.pk}/revoke/"), 404)
    web = login(owner)
    assert web.get(f"/admin/tenancy/invitation/{theirs.pk}/change/").status_code == 404
    assert web.post(f"/admin/tenancy/invitation/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
