"""The two-step sign-in page (``admin:account_security``) and ``manage.py reset_factors``: enrolment
with a QR code and a first code, backup codes shown once, new codes, replacing the app, removal, and
the end of the user's other sessions with each change."""

from __future__ import annotations

import base64
import urllib.parse
from io import StringIO

import pytest
from bs4 import BeautifulSoup
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import totp

from prisma_glow import factors
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCode, BackupCodeDevice
from prisma_glow.audit.models import AuditEvent
from tests.factories import MembershipFactory, TOTPDeviceFactory, UserFactory, backup_codes, totp_code

pytestmark = pytest.mark.django_db

SECURITY = "/admin/account/security/"


@pytest.fixture
def member(org):
    user = UserFactory(username="mira")
    MembershipFactory(user=user, organization=org, role="editor")
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def code_from_page(html: str) -> str:
    """What an authenticator app shows after reading the key the page prints."""
    secret = BeautifulSoup(html, "html.parser").find(id="totp-secret").get_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key):06d}"


def enrol(client: Client) -> tuple[str, list[str]]:
    page = client.get(SECURITY).content.decode()
    response = client.post(SECURITY, {"action": "confirm", "confirm-code": code_from_page(page)})
    assert response.status_code == 200, response.content
    codes = [
        li.get_text().strip()
        for li in BeautifulSoup(response.content, "html.parser").select("#backup-codes li")
    ]
    return page, codes


# --- Enrolment -----------------------------------------------------------------------------------
def test_the_page_shows_a_qr_code_as_an_svg_image_and_the_key_as_text(member):
    client = signed_in(member)
    response = client.get(SECURITY)
    assert response.status_code == 200
    soup = BeautifulSoup(response.content, "html.parser")
    image = soup.select_one("img.pg-qr")
    assert image["src"].startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(image["src"].split(",", 1)[1])
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    assert "style=" not in svg and "<script" not in svg
    assert soup.find(attrs={"style": True}) is None, "no inline style under the CSP"
    device = AuthenticatorDevice.objects.get(user=member, confirmed=False)
    assert factors.normalise(soup.find(id="totp-secret").get_text()) == base64.b32encode(
        device.bin_key
    ).decode().rstrip("=")
    assert "Two-step sign-in is <strong>off</strong>" in response.content.decode()
    assert not factors.has_factor(member), "an enrolment not yet confirmed is no factor"
    # Reloading the page shows the same key until it is confirmed.
    again = BeautifulSoup(client.get(SECURITY).content, "html.parser").find(id="totp-secret").get_text()
    assert again == soup.find(id="totp-secret").get_text()


def test_enrolment_is_confirmed_by_a_first_code_and_gives_ten_backup_codes_once(member, org):
    client = signed_in(member)
    other = signed_in(member)
    page, codes = enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert factors.has_factor(member)
    assert client.session[factors.CHECKED_AT], "the first code counts as a check of this session"
    assert client.get("/admin/").status_code == 200
    assert "_auth_user_id" not in other.session, "enrolling ends the user's other sessions"
    assert other.get("/admin/").status_code == 302
    later = client.get(SECURITY).content.decode()
    assert "Two-step sign-in is <strong>on</strong>" in later
    assert "Backup codes left: <strong>10</strong>" in later
    assert not any(code in later for code in codes), "backup codes are shown once"
    event = AuditEvent.objects.get(action="factor.enrolled", organization=org)
    assert event.after == {"device": "authenticator", "replaced": False, "backup_codes": 10}
    assert event.actor_user_id == member.pk and event.object_id == str(member.pk)
    assert factors.check_code(member, codes[0]) is not None
    assert factors.check_code(member, codes[0]) is None, "each backup code works once"


def test_a_wrong_first_code_does_not_enrol(member):
    client = signed_in(member)
    client.get(SECURITY)
    device = AuthenticatorDevice.objects.get(user=member, confirmed=False)
    bad = "000000" if totp_code(device) != "000000" else "111111"
    response = client.post(SECURITY, {"action": "confirm", "confirm-code": bad})
    assert response.status_code == 200
    assert "That code does not match" in response.content.decode()
    assert not factors.has_factor(member)
    assert not BackupCodeDevice.objects.filter(user=member).exists()
    device.refresh_from_db()
    assert device.throttling_failure_count == 1, "the first code is throttled like any other"


def test_the_page_needs_a_signed_in_staff_user():
    response = Client().get(SECURITY)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    outsider = UserFactory(is_staff=False)
    response = signed_in(outsider).get(SECURITY)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_an_unknown_action_is_refused_with_a_message(member):
    response = signed_in(member).post(SECURITY, {"action": "explode"}, follow=True)
    assert "Choose what to do with the buttons of this page." in response.content.decode()


# --- Changes that need a code ----------------------------------------------------------------------
@pytest.fixture
def enrolled(member):
    device = TOTPDeviceFactory(user=member)
    codes = backup_codes(member, count=10)
    return device, codes


def test_new_backup_codes_need_a_code_replace_the_old_and_end_other_sessions(member, enrolled, org):
    device, old = enrolled
    client, other = signed_in(member), signed_in(member)
    bad = "000000" if totp_code(device) != "000000" else "111111"
    response = client.post(SECURITY, {"action": "regenerate", "regenerate-code": bad})
    assert "That code is not right" in response.content.decode()
    assert BackupCode.objects.filter(device__user=member).count() == 10
    device.throttle_reset()
    response = client.post(SECURITY, {"action": "regenerate", "regenerate-code": old[0]})
    new = [
        li.get_text().strip()
        for li in BeautifulSoup(response.content, "html.parser").select("#backup-codes li")
    ]
    assert len(new) == 10 and not set(new) & set(old)
    assert factors.check_code(member, old[1]) is None, "the old codes stop working"
    assert "_auth_user_id" not in other.session
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action="factor.backup_codes_regenerated", organization=org).count() == 1


def test_removal_needs_a_code_and_ends_the_other_sessions(member, enrolled, org):
    device, _codes = enrolled
    client, other = signed_in(member), signed_in(member)
    response = client.post(SECURITY, {"action": "remove", "remove-code": ""})
    assert "Type the code your authenticator app shows" in response.content.decode()
    assert factors.has_factor(member)
    response = client.post(SECURITY, {"action": "remove", "remove-code": totp_code(device)}, follow=True)
    assert "Two-step sign-in is off" in response.content.decode()
    assert not AuthenticatorDevice.objects.filter(user=member, confirmed=True).exists()
    assert not BackupCodeDevice.objects.filter(user=member).exists()
    assert "_auth_user_id" not in other.session, "a second client's session is gone"
    assert client.get("/admin/").status_code == 200, "the session that removed it stays"
    assert AuditEvent.objects.get(action="factor.removed", organization=org).after == {
        "devices_removed": 2,
        "sessions_ended": 1,
    }


def test_removal_is_refused_while_factors_are_required(member, enrolled, settings):
    device, _codes = enrolled
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = Client()
    client.post("/admin/login/", {"username": "mira", "password": "correct-horse-battery", "next": "/admin/"})
    client.post("/admin/login/code/", {"code": totp_code(device)})
    page = client.get(SECURITY).content.decode()
    assert "cannot be turned off" in page and 'value="remove"' not in page
    device.refresh_from_db()
    response = client.post(
        SECURITY, {"action": "remove", "remove-code": totp_code(device, drift=1)}, follow=True
    )
    assert "it cannot be removed" in response.content.decode()
    assert factors.has_factor(member)


def test_replacing_the_app_keeps_the_old_one_until_the_new_one_is_confirmed(member, enrolled, org):
    device, codes = enrolled
    client = signed_in(member)
    response = client.post(SECURITY, {"action": "replace", "replace-code": codes[0]}, follow=True)
    page = response.content.decode()
    assert "Replace the authenticator app" in page and 'id="totp-secret"' in page
    assert factors.has_factor(member), "the current app still works"
    new = AuthenticatorDevice.objects.get(user=member, confirmed=False)
    response = client.post(SECURITY, {"action": "confirm", "confirm-code": totp_code(new)})
    assert response.status_code == 200 and b"backup-codes" in response.content
    assert list(AuthenticatorDevice.objects.filter(user=member).values_list("pk", flat=True)) == [new.pk]
    assert AuditEvent.objects.get(action="factor.enrolled", organization=org).after["replaced"] is True


def test_a_replacement_can_be_abandoned(member, enrolled):
    device, codes = enrolled
    client = signed_in(member)
    client.post(SECURITY, {"action": "replace", "replace-code": codes[0]})
    client.post(SECURITY, {"action": "cancel"})
    assert list(AuthenticatorDevice.objects.filter(user=member)) == [device]


# --- The operator's reset ------------------------------------------------------------------------
def test_reset_factors_removes_every_factor_ends_every_session_and_is_audited(member, enrolled, org):
    client = signed_in(member)
    out = StringIO()
    call_command("reset_factors", "mira", stdout=out)
    assert "Removed 2 second factor device(s) of mira" in out.getvalue()
    assert not factors.has_factor(member) and not BackupCodeDevice.objects.filter(user=member).exists()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="factor.reset", organization=org)
    assert event.actor_user_id is None and event.after == {"devices_removed": 2, "sessions_ended": 1}
    with pytest.raises(CommandError, match="No user is named “nobody”"):
        call_command("reset_factors", "nobody")


def test_reset_of_a_user_in_no_organisation_is_a_system_event(db):
    user = UserFactory(username="loner")
    TOTPDeviceFactory(user=user)
    call_command("reset_factors", "loner", stdout=StringIO())
    assert AuditEvent.objects.get(action="factor.reset").organization is None


def test_no_admin_page_shows_devices(member):
    """A superuser cannot read another user's authenticator key through an admin page: the devices
    have no ModelAdmin (and django-otp's own plugins, with their QR page, are not installed)."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    superuser = UserFactory(is_superuser=True)
    device = TOTPDeviceFactory(user=member)
    for model in (AuthenticatorDevice, BackupCodeDevice, BackupCode):
        assert not admin.site.is_registered(model)
    for name in (
        "admin:otp_totp_totpdevice_changelist",
        "admin:otp_static_staticdevice_changelist",
        "admin:accounts_authenticatordevice_changelist",
    ):
        with pytest.raises(NoReverseMatch):
            reverse(name)
    client = signed_in(superuser)
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 404
    assert client.get(f"/admin/accounts/authenticatordevice/{device.pk}/change/").status_code == 404


def test_reset_of_a_user_without_a_factor_says_so(member):
    out = StringIO()
    call_command("reset_factors", "mira", stdout=out)
    assert "mira had no second factor; their sessions were ended." in out.getvalue()
    assert AuditEvent.objects.get(action="factor.reset").after == {"devices_removed": 0, "sessions_ended": 0}


@pytest.mark.parametrize("action", ["regenerate", "replace"])
def test_changing_factors_is_a_step_up_audited_right_or_wrong(member, enrolled, org, action):
    """Review of issue 16: the code that allows replacing the app or making new backup codes is a
    step-up like any other: a wrong one is audited (factor.step_up_failed), a right one too
    (factor.step_up, naming the change), and the session is fresh after it."""
    device, _codes = enrolled
    client = signed_in(member)
    bad = "000000" if totp_code(device) != "000000" else "111111"
    client.post(SECURITY, {"action": action, f"{action}-code": bad})
    failed = AuditEvent.objects.get(action="factor.step_up_failed", organization=org)
    assert failed.after["door"] == "account_security" and failed.after["operation"] == f"factor.{action}"
    device.throttle_reset()
    client.post(SECURITY, {"action": action, f"{action}-code": totp_code(device)})
    passed = AuditEvent.objects.get(action="factor.step_up", organization=org)
    assert passed.after["operation"] == f"factor.{action}" and passed.after["device"] == "authenticator"
    assert factors.CHECKED_AT in client.session
