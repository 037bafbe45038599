"""Signing in with a second factor (prisma_glow/accounts): the login's password and code steps, the
pending sign-in, enforcement when factors are required (admin and API), and the audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from prisma_glow import factors
from prisma_glow.accounts import signin
from prisma_glow.accounts.models import AuthenticatorDevice
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    APIKeyFactory,
    MembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    backup_codes,
    totp_code,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
LOGIN = "/admin/login/"
CODE = "/admin/login/code/"
SECURITY = "/admin/account/security/"


def wrong(device) -> str:
    return "000000" if totp_code(device) != "000000" else "111111"


def password_step(client: Client, user, *, next_url: str = "/admin/"):
    return client.post(LOGIN, {"username": user.username, "password": PASSWORD, "next": next_url})


@pytest.fixture
def member(org):
    user = UserFactory(username="mira")
    MembershipFactory(user=user, organization=org, role="editor")
    return user


@pytest.fixture
def device(member):
    return TOTPDeviceFactory(user=member)


# --- The code step ---------------------------------------------------------------------------------
def test_a_user_with_a_factor_is_not_signed_in_by_the_password_alone(client, device):
    """The password step keeps a pending sign-in and asks for the code: the session is anonymous."""
    response = password_step(client, device.user)
    assert response.status_code == 302
    assert response["Location"].startswith(CODE)
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302, "the dashboard is still closed"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"mira" in page.content and b"backup codes" in page.content


def test_login_with_an_authenticator_code_verifies_the_session_and_keeps_next(client, device, org):
    response = password_step(client, device.user, next_url="/admin/agents/agent/")
    pending_key = client.session.session_key
    response = client.post(response["Location"], {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == "/admin/agents/agent/"
    assert client.session["_auth_user_id"] == str(device.user.pk)
    assert client.session.session_key != pending_key, "the sign-in renews the session key"
    assert client.session[factors.CHECKED_AT], "the sign-in is a fresh check (step-up)"
    assert signin.PENDING not in client.session
    assert client.get("/admin/").status_code == 200
    event = AuditEvent.objects.get(action="login.second_factor", organization=org)
    assert event.after == {"device": "authenticator"}
    assert event.actor_user_id == device.user.pk


def test_next_leading_elsewhere_is_replaced_by_the_dashboard(client, device):
    response = password_step(client, device.user, next_url="https://evil.example/")
    response = client.post(response["Location"], {"code": totp_code(device), "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"


def test_login_with_a_backup_code_uses_it_once(client, device, org):
    codes = backup_codes(device.user, count=2)
    password_step(client, device.user)
    response = client.post(CODE, {"code": codes[0].upper()}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/"
    assert "1 left" in response.content.decode()
    assert AuditEvent.objects.get(action="login.second_factor").after == {
        "device": "backup_code",
        "backup_codes_left": 1,
    }
    other = Client()
    password_step(other, device.user)
    response = other.post(CODE, {"code": codes[0]})
    assert response.status_code == 200
    assert "That backup code is not right, or was already used." in response.content.decode()
    assert "_auth_user_id" not in other.session


def test_a_wrong_code_is_refused_and_the_next_try_must_wait(client, device):
    """Each wrong code doubles django-otp's wait on the device; the page says how long."""
    password_step(client, device.user)
    response = client.post(CODE, {"code": wrong(device)})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert "_auth_user_id" not in client.session
    response = client.post(CODE, {"code": totp_code(device)})
    text = response.content.decode()
    assert "Wait 1 second before the next try" in text or "Wait 2 seconds before the next try" in text
    assert "_auth_user_id" not in client.session, "a right code during the wait is not checked"
    device.refresh_from_db()
    with time_machine.travel(timezone.now() + timedelta(seconds=5)):
        response = client.post(CODE, {"code": totp_code(device)})
        assert response.status_code == 302
        assert client.session["_auth_user_id"] == str(device.user.pk)


def test_wrong_codes_do_not_count_toward_the_password_lockout(client, device, settings):
    """Documented choice: the code step is throttled per device, not counted by django-axes."""
    password_step(client, device.user)
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        client.post(CODE, {"code": wrong(device)})
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert password_step(client, device.user)["Location"].startswith(CODE)


def test_an_empty_code_says_what_to_type(client, device):
    password_step(client, device.user)
    response = client.post(CODE, {"code": "  "})
    assert "Type the code your authenticator app shows, or a backup code." in response.content.decode()


def test_the_pending_sign_in_expires_after_five_minutes(client, device):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        password_step(client, device.user, next_url="/admin/agents/agent/")
        traveller.shift(timedelta(seconds=signin.PENDING_SECONDS + 1))
        response = client.post(CODE + "?next=/admin/agents/agent/", {"code": totp_code(device)}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/login/?next=%2Fadmin%2Fagents%2Fagent%2F"
    assert "waited more than 5 minutes for its code: enter your password again" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_code_step_without_a_password_goes_to_the_login(client, device):
    response = client.post(CODE, {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_a_password_changed_during_the_pending_sign_in_voids_it(client, device):
    password_step(client, device.user)
    device.user.set_password("another-long-password")
    device.user.save()
    response = client.post(CODE, {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_still_counts_toward_the_lockout(client, device, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "mira", "password": "wrong", "next": "/admin/"})
    response = password_step(client, device.user)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()


def test_a_user_without_a_factor_signs_in_with_the_password_and_is_offered_one(client, member):
    """Development (factors not required): the printed demo login opens without a code."""
    response = password_step(client, member)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Set up two-step sign-in" in text
    assert f'href="{SECURITY}"' in text


# --- Required ------------------------------------------------------------------------------------
def test_required_without_a_factor_the_admin_sends_to_enrolment_first(client, member, settings):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    response = password_step(client, member, next_url="/admin/agents/agent/")
    assert response["Location"] == f"{SECURITY}?next=%2Fadmin%2Fagents%2Fagent%2F"
    for path in ("/admin/", "/admin/agents/agent/", "/admin/tenancy/apikey/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(SECURITY), path
    assert client.get(SECURITY).status_code == 200
    htmx = client.get("/admin/", headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx["HX-Redirect"].startswith(SECURITY)
    # Enrolling opens the admin.
    device = AuthenticatorDevice.objects.get(user=member, confirmed=False)
    response = client.post(
        SECURITY, {"action": "confirm", "confirm-code": totp_code(device), "next": "/admin/"}
    )
    assert response.status_code == 200 and b"backup-codes" in response.content
    assert client.get("/admin/agents/agent/").status_code == 200


def test_required_a_session_opened_without_the_code_is_logged_out(member, device, settings):
    """A session that did not give a code (opened before factors were required) must sign in again."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = Client()
    client.force_login(member)
    response = client.get("/admin/agents/agent/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fadmin%2Fagents%2Fagent%2F"
    assert "_auth_user_id" not in client.session


def test_required_the_api_refuses_a_session_until_it_is_verified(member, settings, org):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = Client()
    client.force_login(member)
    response = client.get("/api/v1/agents/")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "mfa_required" and body["status"] == 403
    assert "/admin/account/security/" in body["message"]
    TOTPDeviceFactory(user=member)
    body = client.get("/api/v1/agents/").json()
    assert body["code"] == "mfa_required" and "/admin/login/" in body["message"]


def test_required_the_api_serves_a_session_that_gave_a_code(client, device, settings, org):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    password_step(client, device.user)
    assert client.get("/api/v1/agents/").status_code in (401, 403), "a pending sign-in is no session"
    client.post(CODE, {"code": totp_code(device)})
    response = client.get("/api/v1/agents/")
    assert response.status_code == 200, response.content


def test_required_api_keys_are_unaffected(settings, org):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = Client()
    response = client.get("/api/v1/agents/", headers={"Authorization": f"Api-Key {key.plaintext}"})
    assert response.status_code == 200, response.content


def test_not_required_the_api_serves_a_session_without_a_factor(member, settings, org):
    settings.PRISMA_GLOW_REQUIRE_MFA = False
    client = Client()
    client.force_login(member)
    assert client.get("/api/v1/agents/").status_code == 200


def test_required_enrolment_page_hides_the_sidebar_until_verified(member, settings):
    """The forced enrolment page links to nothing that would send the user back to it."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = Client()
    client.force_login(member)
    page = client.get(SECURITY).content.decode()
    assert 'id="nav-sidebar"' not in page
    settings.PRISMA_GLOW_REQUIRE_MFA = False
    assert 'id="nav-sidebar"' in client.get(SECURITY).content.decode()
