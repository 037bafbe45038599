"""Second factors in Chromium: enrolment from the page (the key read off it, the code computed as an
authenticator app would), then logging out and in again with a code; and development's offer."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import PASSWORD, screenshot

pytestmark = pytest.mark.e2e


def app_code(secret_text: str, *, drift: int = 0) -> str:
    """What an authenticator app that was given ``secret_text`` shows (``drift`` steps on)."""
    secret = secret_text.replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=drift):06d}"


def password_step(page, username: str) -> None:
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_required_enrolment_then_login_with_a_code(page, live_server, editor, org, settings, watcher):
    """ASVS 5.0 V6.3.3, V6.5.x in the browser: with factors required, the first sign-in leads to
    enrolment (QR code under the strict CSP, key as text), ten backup codes are shown once, and the
    next sign-in asks for the code — a wrong one is refused and says to wait, the right one opens the
    page that was asked for."""
    settings.PRISMA_GLOW_REQUIRE_MFA = True
    page.goto("/admin/agents/agent/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.get_by_label("Username").fill("mira")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Enrolment, forced before anything else.
    expect(page).to_have_url(re.compile(r"/admin/account/security/\?next=%2Fadmin%2Fagents%2Fagent%2F$"))
    expect(page.locator(".messagelist")).to_contain_text("Two-step sign-in is required here")
    qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
    expect(qr).to_be_visible()
    assert page.evaluate("document.querySelector('img.pg-qr').naturalWidth") > 100, "the SVG QR code renders"
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "mfa-01-enrolment")
    page.goto("/admin/tenancy/apikey/")
    expect(page).to_have_url(re.compile(r"/admin/account/security/"))
    page.get_by_label("Code from the app").fill(app_code(secret))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    codes = page.locator("#backup-codes li")
    expect(codes).to_have_count(10)
    backup = codes.first.inner_text().strip()
    screenshot(page, "mfa-02-backup-codes")
    page.get_by_role("link", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/admin/tenancy/apikey/$"))  # the page last asked for
    assert AuditEvent.objects.filter(action="factor.enrolled", organization=org).count() == 1

    # Log out, then in again: the password alone does not open the admin.
    page.get_by_role("button", name="Log out").click()
    password_step(page, "mira")
    expect(page).to_have_url(re.compile(r"/admin/login/code/"))
    expect(page.get_by_text("Signing in as mira.")).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    password_step(page, "mira")
    page.get_by_label("Code").fill("000000" if app_code(secret, drift=1) != "000000" else "111111")
    page.get_by_role("button", name="Verify and log in").click()
    expect(page.locator(".errornote")).to_contain_text("That code is not right")
    expect(page.locator(".errornote")).to_contain_text(re.compile(r"Wait \d seconds? before the next try"))
    screenshot(page, "mfa-03-wrong-code")
    page.wait_for_timeout(2100)  # the throttle's wait after one wrong code (1 s), with room
    page.get_by_label("Code").fill(app_code(secret, drift=1))  # the next step: the enrolment used this one
    page.get_by_role("button", name="Verify and log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#site-name")).to_be_visible()
    assert AuditEvent.objects.filter(action="login.second_factor", organization=org).count() == 1

    # A backup code signs in once.
    page.get_by_role("button", name="Log out").click()
    password_step(page, "mira")
    page.get_by_label("Code").fill(backup.upper())
    page.get_by_role("button", name="Verify and log in").click()
    expect(page.locator(".messagelist")).to_contain_text("You signed in with a backup code: 9 left")
    assert watcher.take() == []


def test_development_offers_two_step_sign_in_without_requiring_it(
    page, live_server, editor, settings, watcher
):
    """Development (factors not required): the demo login opens the dashboard with the password
    alone, and the header offers to set up two-step sign-in."""
    settings.PRISMA_GLOW_REQUIRE_MFA = False
    password_step(page, "mira")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    link = page.get_by_role("link", name="Set up two-step sign-in")
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    screenshot(page, "mfa-04-offer")
    assert watcher.take() == []
