"""The invitation's accept page (``/invitation/<token>/``) and the admin's invitation pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from prisma_glow.admin.scoping import SESSION_KEY
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Invitation, Membership
from tests.factories import (
    InvitationFactory,
    MembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    totp_code,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-pass-phrase-9"


def url(invitation) -> str:
    return f"/invitation/{invitation.token}/"


def sign_up(client, invitation, **data):
    form = {"username": "mira", "password": PASSWORD, "password_again": PASSWORD, **data}
    return client.post(url(invitation), form)


def test_a_new_colleague_chooses_a_username_and_password_then_signs_in(org, owner):
    """The page is the admin's, never cached, sends no Referer elsewhere; the account is created, linked with
    the role, and sent to the normal login (where a required second factor is enrolled)."""
    invitation = InvitationFactory(
        organization=org, email="mira@firm.example", role="viewer", invited_by=owner
    )
    client = Client()
    page = client.get(url(invitation))
    html = page.content.decode()
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] and page["Referrer-Policy"] == "same-origin"
    assert f"Join {org.name}" in html and "mira@firm.example" in html and "as <strong>viewer</strong>" in html
    assert 'value="mira@firm.example"' in html  # the username is offered as the address
    assert "at least 8 characters" in html  # Django's password rules are shown
    response = sign_up(client, invitation, first_name="Mira")
    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    user = Membership.objects.get(organization=org, role="viewer", user__username="mira").user
    assert user.is_staff and user.email == "mira@firm.example"
    assert "_auth_user_id" not in client.session  # not signed in: the normal login follows
    login_page = client.get("/admin/login/").content.decode()
    assert "Your account mira is ready" in login_page
    assert client.login(username="mira", password=PASSWORD)
    assert client.get("/admin/").status_code == 200


def test_the_sign_up_form_shows_each_error_beside_its_field(org, editor):
    invitation = InvitationFactory(organization=org)
    client = Client()
    html = sign_up(client, invitation, password="short", password_again="short").content.decode()
    assert "This password is too short" in html
    html = sign_up(client, invitation, password_again="something-else-1").content.decode()
    assert "The two passwords differ" in html
    html = sign_up(client, invitation, username=editor.username).content.decode()
    assert "This username is taken" in html
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is None
    assert not Membership.objects.filter(organization=org, user__email=invitation.email).exists()


def test_a_link_works_once_and_says_so_after(org):
    invitation = InvitationFactory(organization=org)
    sign_up(Client(), invitation)
    page = Client().get(url(invitation))
    assert page.status_code == 410 and "already been used" in page.content.decode()
    again = sign_up(Client(), invitation, username="someone-else")
    assert again.status_code == 410
    assert Membership.objects.filter(organization=org, user__email=invitation.email).count() == 1


def test_expired_revoked_and_unknown_links_are_clear_pages(org):
    invitation = InvitationFactory(organization=org)
    with time_machine.travel(timezone.now() + timedelta(hours=49)):
        page = Client().get(url(invitation))
        assert page.status_code == 410 and "expired on" in page.content.decode()
        assert sign_up(Client(), invitation).status_code == 410
    revoked = InvitationFactory(organization=org, revoked_at=timezone.now())
    page = Client().get(url(revoked))
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    page = Client().get("/invitation/not-a-real-token/")
    assert page.status_code == 404 and "not valid" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert not Membership.objects.filter(organization=org, user__email=invitation.email).exists()


def test_an_existing_account_signs_in_then_accepts(org, other_org):
    """Anonymous: sent to the normal login with ?next= the link; signed in as the invited address: one
    button accepts (a GET changes nothing); then the admin shows the new organisation."""
    mira = UserFactory(username="mira", email="Mira@Firm.example")
    MembershipFactory(organization=other_org, user=mira, role="owner")
    invitation = InvitationFactory(organization=org, email="mira@firm.example", role="editor")
    anonymous = Client()
    response = anonymous.get(url(invitation))
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next=%2Finvitation%2F{invitation.token}%2F"
    assert not Membership.objects.filter(organization=org, user=mira).exists()
    client = login(mira)
    page = client.get(url(invitation))
    assert page.status_code == 200 and f"Accept and join {org.name}" in page.content.decode()
    assert not Membership.objects.filter(organization=org, user=mira).exists()
    response = client.post(url(invitation))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert Membership.objects.get(organization=org, user=mira).role == "editor"
    assert client.session[SESSION_KEY] == org.pk
    dashboard = client.get("/admin/").content.decode()
    assert f"You joined {org.name} as editor" in dashboard
    event = AuditEvent.objects.get(action="invitation.accept")
    assert event.actor_user == mira and event.after["new_account"] is False


def test_another_signed_in_user_is_told_and_cannot_accept(org, editor):
    invitation = InvitationFactory(organization=org, email="mira@firm.example")
    client = login(editor)
    page = client.get(url(invitation))
    html = page.content.decode()
    assert page.status_code == 200  # not a 4xx: Django would log the link (review of issue 16)
    assert f"signed in as {editor.username}" in html and "Sign out" in html
    assert "Accept and join" not in html
    assert client.post(url(invitation)).status_code == 200
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is None


def test_an_account_that_cannot_sign_in_is_told_to_ask_the_operator(org):
    UserFactory(username="mira", email="mira@firm.example", is_active=False)
    invitation = InvitationFactory(organization=org, email="mira@firm.example")
    page = Client().get(url(invitation))
    assert page.status_code == 200 and "cannot sign in" in page.content.decode()
    assert sign_up(Client(), invitation).status_code == 200  # the form is not offered, nothing is created
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is None


def test_a_member_already_is_told(org, editor):
    editor.email = "jon@firm.example"
    editor.save()
    invitation = InvitationFactory(organization=org, email="jon@firm.example")
    response = login(editor).post(url(invitation))
    assert response.status_code == 409 and "already a member" in response.content.decode()


# --- The admin's invitation pages ----------------------------------------------------------------


def test_the_owner_invites_sees_and_revokes(owner_client, org, mailoutbox):
    response = owner_client.post(
        "/admin/tenancy/invitation/add/", {"email": "mira@firm.example", "role": "owner"}
    )
    html = response.content.decode()
    assert (
        response.status_code == 200 and "Invitation sent" in html and "no-store" in response["Cache-Control"]
    )
    assert "testserver/invitation/" not in html  # the link is in the e-mail only (locmem is not the console)
    invitation = Invitation.objects.get(organization=org)
    listing = owner_client.get("/admin/tenancy/invitation/").content.decode()
    assert "mira@firm.example" in listing and "pg-badge-pending" in listing
    detail = owner_client.get(f"/admin/tenancy/invitation/{invitation.pk}/change/").content.decode()
    assert "Revoke" in detail
    response = owner_client.post(f"/admin/tenancy/invitation/{invitation.pk}/revoke/", follow=True)
    assert "was revoked" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    response = owner_client.post(f"/admin/tenancy/invitation/{invitation.pk}/revoke/", follow=True)
    assert "already revoked" in response.content.decode()


def test_the_sent_page_shows_the_link_with_the_console_backend(owner_client, org, settings, capsys):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    html = owner_client.post(
        "/admin/tenancy/invitation/add/", {"email": "mira@firm.example", "role": "viewer"}
    ).content.decode()
    assert "Development only" in html and "http://testserver/invitation/" in html
    assert "http://testserver/invitation/" in capsys.readouterr().out


def test_the_pages_say_the_expiry_in_the_time_zone_they_show_it_in(owner_client, org, settings, mailoutbox):
    """With DJANGO_TIME_ZONE set, the sent and accept pages give the link's end in that zone and name it
    (they used to write the local time followed by "UTC")."""
    settings.TIME_ZONE = "Europe/Berlin"
    html = owner_client.post(
        "/admin/tenancy/invitation/add/", {"email": "mira@firm.example", "role": "viewer"}
    ).content.decode()
    invitation = Invitation.objects.get(organization=org)
    expires = timezone.localtime(invitation.expires_at, timezone.get_current_timezone())
    shown = f"{expires:%H:%M} {expires.tzname()}"  # CET or CEST
    assert expires.tzname() in ("CET", "CEST") and shown in html and "UTC" not in html
    link = re.search(r"https?://testserver(/invitation/\S+/)", mailoutbox[0].body).group(1)
    accept = Client().get(link).content.decode()
    assert shown in accept and "UTC" not in accept


def test_an_admin_cannot_revoke_an_owners_invitation_in_the_admin(admin_role_client, org):
    invitation = InvitationFactory(organization=org, role="owner")
    detail = admin_role_client.get(f"/admin/tenancy/invitation/{invitation.pk}/change/").content.decode()
    assert f"tenancy/invitation/{invitation.pk}/revoke/" not in detail
    response = admin_role_client.post(f"/admin/tenancy/invitation/{invitation.pk}/revoke/")
    assert response.status_code == 403 and "owner" in response.content.decode()
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


def test_another_organisations_invitation_is_404(owner_client, org, other_org):
    foreign = InvitationFactory(organization=other_org)
    assert owner_client.get(f"/admin/tenancy/invitation/{foreign.pk}/change/").status_code == 404
    assert owner_client.post(f"/admin/tenancy/invitation/{foreign.pk}/revoke/").status_code == 404
    assert foreign.email not in owner_client.get("/admin/tenancy/invitation/").content.decode()


def test_invitations_cannot_be_edited_or_deleted(owner_client, org):
    invitation = InvitationFactory(organization=org)
    assert owner_client.get(f"/admin/tenancy/invitation/{invitation.pk}/delete/").status_code == 403
    assert (
        owner_client.post(f"/admin/tenancy/invitation/{invitation.pk}/change/", {"role": "owner"}).status_code
        == 200
    )
    assert Invitation.objects.get(pk=invitation.pk).role == "editor"


def test_with_factors_required_a_password_only_session_signs_in_with_its_code_first(org, settings):
    """PRISMA_GLOW_REQUIRE_MFA: a session that has not checked a second factor accepts nothing (GET or
    POST); it is sent to sign in again with the code and comes back to the link, then accepts."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    mira = UserFactory(username="mira", email="mira@firm.example")
    device = TOTPDeviceFactory(user=mira)
    invitation = InvitationFactory(organization=org, email="mira@firm.example", role="editor")
    link = url(invitation)
    password_only = login(mira)
    for response in (password_only.get(link), password_only.post(link)):
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next=%2Finvitation%2F{invitation.token}%2F"
    assert not Membership.objects.filter(organization=org, user=mira).exists()
    client = Client()
    step = client.post(response["Location"], {"username": "mira", "password": "correct-horse-battery"})
    assert step.status_code == 302 and step["Location"].startswith("/admin/login/code/"), step
    back = client.post(step["Location"], {"code": totp_code(device)})
    assert back.status_code == 302 and back["Location"] == link
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 302
    assert Membership.objects.get(organization=org, user=mira).role == "editor"


def test_with_factors_required_a_user_without_one_enrols_first(org, settings):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    mira = UserFactory(username="mira", email="mira@firm.example")
    invitation = InvitationFactory(organization=org, email="mira@firm.example")
    response = login(mira).post(url(invitation))
    assert response.status_code == 302
    assert response["Location"] == f"/admin/account/security/?next=%2Finvitation%2F{invitation.token}%2F"
    assert not Membership.objects.filter(organization=org, user=mira).exists()
