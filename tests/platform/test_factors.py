"""prisma_glow.factors: checking a second-factor code, and how fresh the check is (step-up)."""

from __future__ import annotations

import django_otp
import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone

from prisma_glow import factors
from tests.factories import TOTPDeviceFactory, UserFactory, backup_codes, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_for(client):
    """A request with a real session, signed in as ``user``."""

    def make(user):
        client.force_login(user)
        request = RequestFactory().get("/")
        request.user = user
        request.session = client.session
        return request

    return make


def test_has_factor_counts_an_authenticator_not_backup_codes_alone():
    user = UserFactory()
    assert not factors.has_factor(user)
    backup_codes(user)
    assert not factors.has_factor(user)
    TOTPDeviceFactory(user=user, confirmed=False)
    assert not factors.has_factor(user), "an enrolment not yet confirmed is no factor"
    TOTPDeviceFactory(user=user)
    assert factors.has_factor(user)


def test_check_code_accepts_the_current_code_once_and_refuses_another_users():
    device = TOTPDeviceFactory()
    other = UserFactory()
    code = totp_code(device)
    assert factors.check_code(other, code) is None
    assert factors.check_code(device.user, f"{code[:3]} {code[3:]}") == device
    device.refresh_from_db()
    assert factors.check_code(device.user, code) is None, "a code is accepted once"


def test_backup_codes_are_one_time_and_do_not_throttle_the_authenticator():
    device = TOTPDeviceFactory()
    codes = backup_codes(device.user)
    assert factors.check_code(device.user, codes[0]).name == "Backup codes"
    assert factors.check_code(device.user, codes[0]) is None
    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert factors.check_code(device.user, totp_code(device)) == device


def test_wrong_codes_are_throttled():
    device = TOTPDeviceFactory()
    assert factors.check_code(device.user, "000000" if totp_code(device) != "000000" else "111111") is None
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert factors.check_code(device.user, totp_code(device)) is None, "the next try waits"
    assert factors.check_code(device.user, "") is None


def test_a_check_renews_the_session_and_is_fresh_for_the_step_up_window(request_for, settings):
    settings.PRISMA_GLOW_STEP_UP_MINUTES = 10
    device = TOTPDeviceFactory()
    request = request_for(device.user)
    key = request.session.session_key
    assert factors.step_up_needed(request)
    factors.record_check(request, device)
    assert request.session.session_key != key
    assert request.session[django_otp.DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert not factors.step_up_needed(request)
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=10, seconds=1)):
        assert not factors.checked_recently(request)
        assert factors.step_up_needed(request)


def test_step_up_is_needed_without_a_factor_only_when_factors_are_required(request_for, settings):
    request = request_for(UserFactory())
    settings.PRISMA_GLOW_REQUIRE_MFA = False
    assert not factors.step_up_needed(request)
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    assert factors.step_up_needed(request)
