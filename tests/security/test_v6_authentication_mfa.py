"""ASVS 5.0 chapter V6 (authentication): second factors (django-otp, prisma_glow/accounts).

Real requests to the admin's login and two-step sign-in pages and the API; devices are django-otp's
rows, codes computed as an authenticator app computes them.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from bs4 import BeautifulSoup
from django.conf import global_settings
from django.contrib.auth.hashers import get_hasher
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp

from prisma_glow import crypto, factors
from prisma_glow.accounts import services
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCode
from tests.factories import MembershipFactory, TOTPDeviceFactory, UserFactory, backup_codes, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def member(org):
    user = UserFactory(username="mira")
    MembershipFactory(user=user, organization=org, role="admin")
    return user


def password_step(client, username="mira"):
    return client.post("/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/"})


def signed_in_with(client, code):
    password_step(client)
    return client.post("/admin/login/code/", {"code": code})


def test_v6_3_3_with_factors_required_every_pathway_needs_the_second_factor(member, settings):
    """ASVS 5.0 V6.3.3, V6.3.4: with PRISMA_GLOW_REQUIRE_MFA on, the password alone opens neither the
    admin nor the API's session authentication — through the login form (a pending sign-in, no
    session) or a session opened otherwise (refused, 403 ``mfa_required``) — and a user without a
    factor reaches nothing but enrolment."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    device = TOTPDeviceFactory(user=member)
    client = Client()
    assert password_step(client)["Location"].startswith("/admin/login/code/")
    assert client.get("/admin/").status_code == 302
    assert client.get("/api/v1/agents/").status_code in (401, 403)
    other = Client()
    other.force_login(member)
    assert other.get("/api/v1/agents/").json()["code"] == "mfa_required"
    assert other.get("/admin/")["Location"].startswith("/admin/login/")
    newcomer = UserFactory(username="noor")
    MembershipFactory(user=newcomer, organization=member.memberships.first().organization, role="viewer")
    fresh = Client()
    assert password_step(fresh, "noor")["Location"].startswith("/admin/account/security/")
    assert fresh.get("/admin/agents/agent/")["Location"].startswith("/admin/account/security/")
    assert fresh.get("/api/v1/agents/").json()["code"] == "mfa_required"
    assert signed_in_with(client, totp_code(device))["Location"] == "/admin/"
    assert client.get("/api/v1/agents/").status_code == 200


def test_v6_3_3_a_user_with_a_factor_always_gives_it_even_when_not_required(member, settings):
    """ASVS 5.0 V6.3.3: in development (not required) a user who enrolled still gives a code."""
    settings.PRISMA_GLOW_REQUIRE_MFA = False
    TOTPDeviceFactory(user=member)
    client = Client()
    assert password_step(client)["Location"].startswith("/admin/login/code/")
    assert "_auth_user_id" not in client.session


def test_v6_3_1_wrong_codes_are_throttled(member):
    """ASVS 5.0 V6.3.1: each wrong code doubles the wait on the device (django-otp), so guessing six
    digits is bounded; a right code during the wait is not even checked."""
    device = TOTPDeviceFactory(user=member)
    client = Client()
    password_step(client)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for expected in (1, 2, 3):
            bad = "000000" if totp_code(device) != "000000" else "111111"
            client.post("/admin/login/code/", {"code": bad})
            device.refresh_from_db()
            assert device.throttling_failure_count == expected
            assert factors.wait_seconds_for(device) == 2 ** (expected - 1)
            traveller.shift(timedelta(seconds=2 ** (expected - 1)))
        traveller.shift(timedelta(seconds=-3))
        response = client.post("/admin/login/code/", {"code": totp_code(device)})
        assert "Wait 3 seconds before the next try" in response.content.decode()
        assert "_auth_user_id" not in client.session


def test_v6_5_1_codes_and_backup_codes_work_once(member):
    """ASVS 5.0 V6.5.1: a TOTP code and a backup code are each accepted once."""
    device = TOTPDeviceFactory(user=member)
    codes = backup_codes(member, count=1)
    code = totp_code(device)
    assert signed_in_with(Client(), code).status_code == 302
    replay = Client()
    assert signed_in_with(replay, code).status_code == 200
    assert "_auth_user_id" not in replay.session
    assert signed_in_with(Client(), codes[0]).status_code == 302
    again = Client()
    signed_in_with(again, codes[0])
    assert "_auth_user_id" not in again.session


def test_v6_5_3_and_v6_5_4_secrets_are_random_and_long_enough(member):
    """ASVS 5.0 V6.5.3, V6.5.4: TOTP keys are 160 random bits (django-otp's ``random_hex``, from the
        OS's CSPRNG), different for every enrolment; backup codes have 40 secret bits (8 base32 characters,
    from ``secrets``) after a two-character index."""
    first = services.totp_enrolment(user=member)
    second = services.totp_enrolment(user=member, fresh=True)
    assert len(first.bin_key) == 20 and len(second.bin_key) == 20
    assert first.bin_key != second.bin_key
    TOTPDeviceFactory(user=member)
    codes = services.backup_codes_regenerate(user=member)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{10}", code) for code in codes)
    assert len({code[2:] for code in codes}) == 10


def _row_text(table: str, where: str, params) -> str:
    """Every column of the matching rows of ``table``, as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {where}", params)  # noqa: S608 (literal names)
        return " ".join(str(value) for row in cursor.fetchall() for value in row)


def test_v6_5_2_backup_codes_are_hashed_and_the_totp_key_encrypted_at_rest(member, settings):
    """ASVS 5.0 V6.5.2 (and V13.3.1 for the TOTP seed): the database holds no backup code and no part
    of one in clear — only a two-character index and a salted hash of the project's password hasher
    (PBKDF2, with a random salt per code) — and the authenticator's key only encrypted with the field
    key (in no form an app would accept: hex, base32, raw). The codes and the key still work."""
    # The production hasher first (tests use MD5 for speed); MD5 stays last for the user's password.
    settings.PASSWORD_HASHERS = [
        *global_settings.PASSWORD_HASHERS,
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    client = Client()
    client.force_login(member)
    page = BeautifulSoup(client.get("/admin/account/security/").content, "html.parser")
    secret = page.find(id="totp-secret").get_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    response = client.post(
        "/admin/account/security/", {"action": "confirm", "confirm-code": f"{totp(key):06d}"}
    )
    codes = [
        li.get_text().strip()
        for li in BeautifulSoup(response.content, "html.parser").select("#backup-codes li")
    ]
    assert len(codes) == 10
    device = AuthenticatorDevice.objects.get(user=member, confirmed=True)
    stored_key = _row_text("accounts_authenticatordevice", "id = %s", [device.pk])
    for form in (key.hex(), key.hex().upper(), secret, secret.lower()):
        assert form not in stored_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM accounts_authenticatordevice WHERE id = %s", [device.pk])
        (ciphertext,) = cursor.fetchone()
    assert crypto.decrypt_str(ciphertext) == key.hex(), "encrypted with the field key, nothing else"
    stored_codes = _row_text(
        "accounts_backupcode",
        "device_id IN (SELECT id FROM accounts_backupcodedevice WHERE user_id = %s)",
        [member.pk],
    )
    for code in codes:
        assert code not in stored_codes and code[2:] not in stored_codes
    hashes = list(BackupCode.objects.filter(device__user=member).values_list("hashed", flat=True))
    assert len(hashes) == 10
    for hashed in hashes:
        algorithm, iterations, salt, _ = hashed.split("$")
        assert (algorithm, int(iterations)) == (get_hasher().algorithm, get_hasher().iterations)
        assert len(salt) >= 16, "a random salt far above 32 bits"
    assert len({hashed.split("$")[2] for hashed in hashes}) == 10, "a salt of its own for every code"
    assert signed_in_with(Client(), codes[3].upper()).status_code == 302
    assert BackupCode.objects.filter(device__user=member).count() == 9


def test_v6_5_5_a_totp_code_lives_thirty_seconds_with_one_step_of_drift(member):
    """ASVS 5.0 V6.5.5: a code is valid for its 30-second step, plus one step either side for clock
    drift; a code two steps old is refused."""
    device = TOTPDeviceFactory(user=member)
    assert device.step == 30 and device.tolerance == 1
    old = f"{totp(device.bin_key, step=30, drift=-2):06d}"
    client = Client()
    signed_in_with(client, old)
    assert "_auth_user_id" not in client.session


def test_v6_4_4_a_lost_factor_is_reset_by_the_operator_only(member, org):
    """ASVS 5.0 V6.4.3, V6.4.4: without the factor nobody removes it through the application (the page
    asks for a code; while required not even with one); the operator's ``reset_factors`` does, ends
    the sessions and is audited, and the next sign-in enrols a new factor."""
    device = TOTPDeviceFactory(user=member)
    client = Client()
    client.force_login(member)
    response = client.post("/admin/account/security/", {"action": "remove", "remove-code": "123 456"})
    assert "is not right" in response.content.decode()
    assert AuthenticatorDevice.objects.filter(pk=device.pk).exists()
    call_command("reset_factors", "mira", stdout=StringIO())
    assert not factors.has_factor(member)
    assert "_auth_user_id" not in client.session


def test_v6_5_6_a_factor_can_be_revoked_by_its_owner(member):
    """ASVS 5.0 V6.5.6: a user removes their own authenticator and backup codes (with a code)."""
    device = TOTPDeviceFactory(user=member)
    backup_codes(member)
    client = Client()
    client.force_login(member)
    client.post("/admin/account/security/", {"action": "remove", "remove-code": totp_code(device)})
    assert not factors.has_factor(member)
    assert not BackupCode.objects.filter(device__user=member).exists()


def test_v6_4_4_enrolment_shows_the_key_once_and_codes_once(member):
    """ASVS 5.0 V6.4.4 (enrolment): the QR code and key are shown only until the first code confirms
    them, and the backup codes only on the page that confirms."""
    client = Client()
    client.force_login(member)
    page = BeautifulSoup(client.get("/admin/account/security/").content, "html.parser")
    secret = page.find(id="totp-secret").get_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    response = client.post(
        "/admin/account/security/", {"action": "confirm", "confirm-code": f"{totp(key):06d}"}
    )
    codes = [
        li.get_text().strip()
        for li in BeautifulSoup(response.content, "html.parser").select("#backup-codes li")
    ]
    assert len(codes) == 10
    later = client.get("/admin/account/security/").content.decode()
    assert secret[:8] not in later.replace(" ", "") and 'id="totp-secret"' not in later
    assert not any(code in later for code in codes)
