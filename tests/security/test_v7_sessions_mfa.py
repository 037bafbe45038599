"""ASVS 5.0 chapter V7 (sessions) for second factors: new keys at each step of signing in, and the end of
the other sessions when a factor changes (prisma_glow/accounts)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from tests.factories import TOTPDeviceFactory, UserFactory, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def test_v7_2_4_each_step_of_signing_in_gets_a_new_session_key(db):
    """ASVS 5.0 V7.2.4: the password step and the code step each replace the session key, and the
    earlier keys are gone from the store (a planted key is worth nothing after either)."""
    device = TOTPDeviceFactory(user=UserFactory(username="mira"))
    client = Client()
    client.get("/admin/login/")
    client.session.save()
    planted = client.session.session_key
    client.post("/admin/login/", {"username": "mira", "password": PASSWORD, "next": "/admin/"})
    pending = client.session.session_key
    client.post("/admin/login/code/", {"code": totp_code(device)})
    final = client.session.session_key
    assert len({planted, pending, final}) == 3
    assert not Session.objects.filter(session_key__in=[planted, pending]).exists()
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("change", ["enrol", "regenerate", "remove"])
def test_v7_4_3_a_changed_second_factor_ends_the_other_sessions(change):
    """ASVS 5.0 V7.4.3: enrolling, making new backup codes or removing the factor ends every other
    session of the user at once (a second browser is signed out) and keeps the one that changed it."""
    user = UserFactory(username="mira")
    here, elsewhere = Client(), Client()
    here.force_login(user)
    elsewhere.force_login(user)
    if change == "enrol":
        here.get("/admin/account/security/")
        device = user.authenticatordevice_set.get(confirmed=False)
        here.post("/admin/account/security/", {"action": "confirm", "confirm-code": totp_code(device)})
    else:
        device = TOTPDeviceFactory(user=user)
        here.post("/admin/account/security/", {"action": change, f"{change}-code": totp_code(device)})
    assert elsewhere.get("/admin/").status_code == 302
    assert here.get("/admin/").status_code == 200
