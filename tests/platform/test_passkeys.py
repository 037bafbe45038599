"""Passkeys (WebAuthn) as a second factor (prisma_glow/accounts/passkeys.py and its doors): added on
the two-step sign-in page, used at the sign-in's code step and at the admin's step-up, removed; each
ceremony's answer is made by a software authenticator with real keys and signatures
(tests/passkey_authenticator.py) and verified by py_webauthn through django-otp-webauthn's helper."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.conf import settings
from django.test import Client
from django_otp_webauthn.models import WebAuthnCredential

from agents.activation import activation_request_create
from agents.models import Agent
from prisma_glow import factors
from prisma_glow.accounts.models import BackupCode
from prisma_glow.admin.stepup import CODE_FIELD, PASSKEY_FIELD
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    MembershipFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    release_now,
    totp_code,
)
from tests.passkey_authenticator import SoftAuthenticator, b64url

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
LOGIN = "/admin/login/"
CODE = "/admin/login/code/"
SECURITY = "/admin/account/security/"
ORIGIN = "http://testserver"


@pytest.fixture
def member(org):
    user = UserFactory(username="mira")
    MembershipFactory(user=user, organization=org, role="editor")
    return user


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def options_in(response, element_id: str) -> dict | None:
    tag = BeautifulSoup(response.content, "html.parser").find(id=element_id)
    return json.loads(tag.get_text()) if tag else None


def begin(client: Client, *, name: str = "Work laptop", code: str | None = None):
    data = {"action": "passkey_begin", "passkey-name": name}
    if code is not None:
        data["passkey-code"] = code
    return client.post(SECURITY, data)


def add_passkey(client: Client, authenticator: SoftAuthenticator, *, name: str = "Work laptop", code=None):
    """The whole registration on the page: a name (and a code), then the browser's answer."""
    page = begin(client, name=name, code=code)
    options = options_in(page, "passkey-creation-options")
    assert options is not None, page.content.decode()
    return client.post(
        SECURITY, {"action": "passkey_finish", "passkey": authenticator.create(options, origin=ORIGIN)}
    )


@pytest.fixture
def key():
    return SoftAuthenticator()


@pytest.fixture
def with_passkey(member, key):
    """``member`` with a passkey as their only second factor (and the backup codes that came with it)."""
    response = add_passkey(signed_in(member), key)
    assert response.status_code == 200
    return member


def code_step(client: Client, user, next_url: str = "/admin/"):
    response = client.post(LOGIN, {"username": user.username, "password": PASSWORD, "next": next_url})
    assert response["Location"].startswith(CODE)
    return client.get(response["Location"])


# --- Registration -----------------------------------------------------------------------------------
def test_a_first_passkey_turns_two_step_sign_in_on_with_backup_codes(member, key, org):
    client, other = signed_in(member), signed_in(member)
    page = begin(client, name="  Work   laptop ")
    options = options_in(page, "passkey-creation-options")
    assert options["rp"] == {"id": "testserver", "name": "Prisma Glow"}
    assert options["excludeCredentials"] == []
    response = client.post(
        SECURITY, {"action": "passkey_finish", "passkey": key.create(options, origin=ORIGIN)}
    )
    assert response.status_code == 200
    codes = BeautifulSoup(response.content, "html.parser").select("#backup-codes li")
    assert len(codes) == 10 and BackupCode.objects.filter(device__user=member).count() == 10
    device = WebAuthnCredential.objects.get(user=member)
    assert device.name == "Work laptop" and device.confirmed
    assert factors.has_factor(member) and factors.device_kind(device) == "passkey"
    assert client.session.get("otp_device_id") == device.persistent_id, "the session counts as verified"
    assert "_auth_user_id" not in other.session, "the user's other sessions end"
    event = AuditEvent.objects.get(action="factor.enrolled", organization=org)
    assert event.after == {
        "device": "passkey",
        "name": "Work laptop",
        "first_factor": True,
        "backup_codes": 10,
    }


def test_adding_a_passkey_next_to_the_app_needs_a_code_and_ends_other_sessions(member, key, org):
    """ASVS 5.0 V7.4.3: adding a passkey needs a fresh factor and ends the other sessions."""
    device = TOTPDeviceFactory(user=member)
    client, other = signed_in(member), signed_in(member)
    refused = begin(client, code="")
    assert options_in(refused, "passkey-creation-options") is None
    assert "Type the code your authenticator app shows" in refused.content.decode()
    wrong = "000000" if totp_code(device) != "000000" else "111111"
    refused = begin(client, code=wrong)
    assert options_in(refused, "passkey-creation-options") is None and "not right" in refused.content.decode()
    device.throttle_reset()
    response = add_passkey(client, key, name="Security key", code=totp_code(device))
    assert response.status_code == 302
    assert WebAuthnCredential.objects.get(user=member).name == "Security key"
    assert "_auth_user_id" not in other.session
    assert client.get(SECURITY).status_code == 200
    event = AuditEvent.objects.get(action="factor.enrolled", organization=org)
    assert event.after["device"] == "passkey" and event.after["first_factor"] is False
    assert not BackupCode.objects.filter(device__user=member).exists(), "the app's codes were not replaced"


def test_within_the_step_up_window_adding_a_passkey_needs_no_second_code(member, key):
    device = TOTPDeviceFactory(user=member)
    client = signed_in(member)
    add_passkey(client, key, code=totp_code(device))
    second = SoftAuthenticator()
    response = add_passkey(client, second, name="Phone")
    assert response.status_code == 302
    assert WebAuthnCredential.objects.filter(user=member).count() == 2


def test_a_registration_answered_from_another_origin_is_refused(member, key):
    client = signed_in(member)
    options = options_in(begin(client), "passkey-creation-options")
    answer = key.create(options, origin="https://evil.example")
    response = client.post(SECURITY, {"action": "passkey_finish", "passkey": answer}, follow=True)
    assert "could not be registered" in response.content.decode()
    assert not WebAuthnCredential.objects.exists()


def test_a_registration_answer_is_used_once(member, key):
    """ASVS 5.0 V6.7.2: a registration challenge is answered once."""
    client = signed_in(member)
    options = options_in(begin(client), "passkey-creation-options")
    answer = key.create(options, origin=ORIGIN)
    assert client.post(SECURITY, {"action": "passkey_finish", "passkey": answer}).status_code == 200
    again = client.post(SECURITY, {"action": "passkey_finish", "passkey": answer}, follow=True)
    assert "over or was already used" in again.content.decode()
    assert WebAuthnCredential.objects.count() == 1


def test_a_malformed_registration_answer_says_what_to_do(member):
    client = signed_in(member)
    begin(client)
    response = client.post(SECURITY, {"action": "passkey_finish", "passkey": "{not json"}, follow=True)
    assert response.status_code == 200 and "could not be read" in response.content.decode()


def test_the_security_page_needs_a_signed_in_staff_user():
    response = Client().post(SECURITY, {"action": "passkey_begin"})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not WebAuthnCredential.objects.exists()


def test_on_an_ip_address_the_page_says_passkeys_need_a_host_name(member):
    client = signed_in(member)
    page = client.get(SECURITY, HTTP_HOST="127.0.0.1:8000")
    note = BeautifulSoup(page.content, "html.parser").find(id="passkey-unavailable").get_text()
    assert "need a host name, not an IP address (127.0.0.1)" in note
    assert "http://localhost:8000/admin/account/security/" in note
    response = client.post(
        SECURITY, {"action": "passkey_begin", "passkey-name": "x"}, HTTP_HOST="127.0.0.1:8000", follow=True
    )
    assert options_in(response, "passkey-creation-options") is None


# --- Removal ----------------------------------------------------------------------------------------
def test_the_last_passkey_cannot_be_removed_while_factors_are_required(with_passkey, settings):
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = signed_in(with_passkey)
    device = WebAuthnCredential.objects.get(user=with_passkey)
    session = client.session
    session[factors.CHECKED_AT] = factors.sessions.now_seconds()
    session.save()
    response = client.post(SECURITY, {"action": "passkey_remove", "passkey-device": device.pk}, follow=True)
    assert "only second factor" in response.content.decode()
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()


def test_removing_a_passkey_needs_a_code_is_audited_and_ends_other_sessions(with_passkey, org):
    """ASVS 5.0 V7.4.3: removing a passkey ends the user's other sessions; audited."""
    member = with_passkey
    device = TOTPDeviceFactory(user=member)
    passkey = WebAuthnCredential.objects.get(user=member)
    client, other = signed_in(member), signed_in(member)
    response = client.post(SECURITY, {"action": "passkey_remove", "passkey-device": passkey.pk}, follow=True)
    assert "Type a code" in response.content.decode()
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    stranger = signed_in(UserFactory(username="stranger"))
    response = stranger.post(
        SECURITY, {"action": "passkey_remove", "passkey-device": passkey.pk, "passkey-code": "x"}, follow=True
    )
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists(), "nobody removes another's passkey"
    response = client.post(
        SECURITY,
        {"action": "passkey_remove", "passkey-device": passkey.pk, "passkey-code": totp_code(device)},
        follow=True,
    )
    assert "Passkey “Work laptop” removed" in response.content.decode()
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    assert "_auth_user_id" not in other.session
    event = AuditEvent.objects.get(action="factor.removed", organization=org)
    # the other client and the one that registered the passkey (with_passkey)
    assert event.after == {"device": "passkey", "name": "Work laptop", "sessions_ended": 2}


# --- Sign-in ----------------------------------------------------------------------------------------
def test_sign_in_with_password_and_passkey(with_passkey, key, org):
    """ASVS 5.0 V6.3.3, V7.2.4, V16.3.1: the passkey completes the pending sign-in like a code: verified, new key, audited."""
    client = Client()
    page = code_step(client, with_passkey, next_url="/admin/agents/agent/")
    options = options_in(page, "signin-passkey-options")
    device = WebAuthnCredential.objects.get(user=with_passkey)
    assert "_auth_user_id" not in client.session
    response = client.post(
        CODE + "?next=/admin/agents/agent/",
        {"passkey": key.get(options, origin=ORIGIN), "next": "/admin/agents/agent/"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/agents/agent/"
    assert client.session["_auth_user_id"] == str(with_passkey.pk)
    assert client.session["otp_device_id"] == device.persistent_id
    assert factors.CHECKED_AT in client.session
    event = AuditEvent.objects.get(action="login.second_factor", organization=org)
    assert event.after == {"device": "passkey"}
    device.refresh_from_db()
    assert device.last_used_at is not None and device.sign_count == key.sign_count


def test_the_sign_in_offers_only_the_pending_users_passkeys(with_passkey, key):
    device = WebAuthnCredential.objects.get(user=with_passkey)
    other = UserFactory(username="olga")
    add_passkey(signed_in(other), SoftAuthenticator())
    options = options_in(code_step(Client(), with_passkey), "signin-passkey-options")
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(key.credential_id)]
    assert device.user == with_passkey


def test_another_users_passkey_does_not_sign_in(with_passkey):
    """ASVS 5.0 V6.3.3: a passkey proves only its own user's second factor."""
    other = UserFactory(username="olga")
    their_key = SoftAuthenticator()
    add_passkey(signed_in(other), their_key)
    client = Client()
    options = options_in(code_step(client, with_passkey), "signin-passkey-options")
    response = client.post(CODE, {"passkey": their_key.get(options, origin=ORIGIN)})
    assert response.status_code == 200 and "was not accepted" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="login.second_factor").exists()


@pytest.mark.parametrize(
    ("origin", "rp_id"),
    [("https://evil.example", None), (ORIGIN, "evil.example"), ("http://testserver:8443", None)],
    ids=["other-origin", "other-relying-party", "other-port"],
)
def test_an_assertion_for_another_origin_or_relying_party_is_refused(with_passkey, key, origin, rp_id):
    """ASVS 5.0 V6 (§V6.7): an assertion is bound to this site's relying party id and origin."""
    client = Client()
    options = options_in(code_step(client, with_passkey), "signin-passkey-options")
    response = client.post(CODE, {"passkey": key.get(options, origin=origin, rp_id=rp_id)})
    assert response.status_code == 200 and "was not accepted" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_replayed_assertion_is_refused(with_passkey, key):
    """ASVS 5.0 V6.7.2 / V6.5.1: an answer to a challenge signs in once; replayed, it is refused."""
    client = Client()
    options = options_in(code_step(client, with_passkey), "signin-passkey-options")
    answer = key.get(options, origin=ORIGIN)
    assert client.post(CODE, {"passkey": answer}).status_code == 302
    client.post("/admin/logout/")
    code_step(client, with_passkey)
    response = client.post(CODE, {"passkey": answer})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_a_passkey_answer_without_a_pending_sign_in_goes_to_the_password(with_passkey, key):
    client = Client()
    response = client.post(CODE, {"passkey": "{}"})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_the_code_step_on_an_ip_address_says_why_there_is_no_passkey(with_passkey):
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post(LOGIN, {"username": with_passkey.username, "password": PASSWORD})
    page = client.get(response["Location"])
    assert options_in(page, "signin-passkey-options") is None
    assert "need a host name, not an IP address" in page.content.decode()


# --- Step-up ----------------------------------------------------------------------------------------
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def test_a_step_up_with_a_passkey_continues_the_activation(org, owner, key):
    add_passkey(signed_in(owner), key)
    web = signed_in(owner)  # a new session: no factor checked in it
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    requester = UserFactory(username="passkey-requester")
    MembershipFactory(user=requester, organization=org, role="editor")
    row = activation_request_create(agent=agent, release=release_now(agent, activate=False), actor=requester)
    url = f"/admin/agents/agent/activation-requests/{row.pk}/approve/"
    page = web.post(url)
    options = options_in(page, "step-up-passkey-options")
    assert options is not None and f'name="{PASSKEY_FIELD}"' in page.content.decode()
    carried = [
        (n, html.unescape(v)) for n, v in HIDDEN.findall(page.content.decode()) if n != "csrfmiddlewaretoken"
    ]

    wrong = web.post(url, dict(carried) | {PASSKEY_FIELD: SoftAuthenticator().get(options, origin=ORIGIN)})
    assert "That passkey was not accepted" in wrong.content.decode()
    assert Agent.objects.get(pk=agent.pk).status == "draft"
    assert AuditEvent.objects.get(action="factor.step_up_failed").after["reason"] == "wrong_passkey"

    options = options_in(wrong, "step-up-passkey-options")
    done = web.post(url, dict(carried) | {PASSKEY_FIELD: key.get(options, origin=ORIGIN), CODE_FIELD: ""})
    assert done.status_code == 302
    assert Agent.objects.get(pk=agent.pk).status == "active"
    event = AuditEvent.objects.get(action="factor.step_up")
    assert event.after["device"] == "passkey" and event.after["operation"] == "release.approve"


def test_the_api_step_up_stays_code_only(with_passkey, key):
    client = signed_in(with_passkey)
    response = client.post("/api/v1/auth/step-up/", {"code": "{}"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] != "" and factors.CHECKED_AT not in client.session


def test_every_ceremony_gets_its_own_long_random_challenge(with_passkey):
    """ASVS 5.0 V6.7.2: the challenge nonce is at least 64 bits and unique (here 512 bits, new each time)."""
    client = Client()
    first = options_in(code_step(client, with_passkey), "signin-passkey-options")["challenge"]
    second = options_in(client.get(CODE), "signin-passkey-options")["challenge"]
    assert first != second
    assert len(base64.urlsafe_b64decode(second + "=" * (-len(second) % 4))) * 8 >= 64


# --- make run --------------------------------------------------------------------------------------
def test_make_run_prints_the_localhost_address(tmp_path):
    """`make run` (scripts/run-dev) listens on 127.0.0.1 but prints http://localhost:8000: passkeys
    need a host name. The script runs for real; its Python is `true`, so nothing is started."""
    script = Path(settings.BASE_DIR) / "scripts" / "run-dev"
    env = {**os.environ, "PRISMA_GLOW_VAR_DIR": str(tmp_path)}
    out = subprocess.run([str(script), "true", "127.0.0.1", "8000"], env=env, capture_output=True, text=True)
    assert "starting on http://localhost:8000/admin/" in out.stdout
    other = subprocess.run([str(script), "true", "0.0.0.0", "9000"], env=env, capture_output=True, text=True)
    assert "starting on http://0.0.0.0:9000/admin/" in other.stdout


@pytest.mark.parametrize(
    "answer",
    [
        "{not json",
        "[]",
        '{"id": 1}',
        '{"id": "x", "rawId": "!!!", "type": "public-key", "response": {}}',
        "null",
    ],
    ids=["not-json", "a-list", "no-fields", "bad-base64", "null"],
)
def test_a_malformed_passkey_answer_at_the_sign_in_is_refused_plainly(with_passkey, answer):
    """Bad input is a page that says what to do, never a server error; nothing is signed in."""
    client = Client()
    code_step(client, with_passkey)
    response = client.post(CODE, {"passkey": answer})
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_required_factors_a_passkey_sign_in_opens_the_admin_and_the_api(with_passkey, key, settings, org):
    """ASVS 5.0 V6.3.3: with factors required, a session that gave its passkey counts as verified."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    client = Client()
    options = options_in(code_step(client, with_passkey), "signin-passkey-options")
    assert client.post(CODE, {"passkey": key.get(options, origin=ORIGIN)}).status_code == 302
    assert client.get("/admin/").status_code == 200
    response = client.get("/api/v1/agents/")
    assert response.status_code == 200, response.content
