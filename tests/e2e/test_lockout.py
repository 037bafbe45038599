"""Browser test of the sign-in lockout: a member locks themself out, the login page says until when,
an owner sees the lock on the dashboard and lifts it, and the member signs in."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import PASSWORD, screenshot, sign_in
from tests.factories import MembershipFactory, UserFactory


def submit(page, username: str, password: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_a_locked_account_says_when_to_retry_and_an_owner_unlocks_it(
    page, context, browser, live_server, org, editor, watcher
):
    """ASVS 5.0 V6.3.1 in the browser: 5 wrong passwords lock the pair; the right one is then refused
    with the time to retry; the owner's Unlock lets the member in."""
    member = UserFactory(username="lena", first_name="Lena", is_staff=True)
    MembershipFactory(user=member, organization=org, role="editor")

    page.goto("/admin/login/")
    for _ in range(4):
        submit(page, "lena", "not-the-password")
        expect(page.locator(".errornote")).to_contain_text("correct username and password")
    submit(page, "lena", "not-the-password")
    submit(page, "lena", PASSWORD)
    note = page.locator(".errornote")
    expect(note).to_contain_text("Too many failed sign-ins for this username from your address")
    expect(note).to_contain_text(re.compile(r"locked until \d\d:\d\d UTC \(in 15 minutes\)"))
    expect(page.locator("#id_username")).to_have_value("lena")
    screenshot(page, "lockout-01-locked")
    assert AuditEvent.objects.filter(action="login.locked", organization=org).count() == 1

    # The owner (Mira) sees the lock on her dashboard and lifts it.
    owner_context = browser.new_context(base_url=live_server.url)
    try:
        sign_in(owner_context, live_server, editor)
        owner_page = owner_context.new_page()
        owner_page.goto("/admin/")
        panel = owner_page.locator("section[aria-labelledby=lockout-title]")
        expect(panel).to_contain_text("lena")
        screenshot(owner_page, "lockout-02-owner-dashboard")
        panel.get_by_role("button", name="Unlock").click()
        expect(owner_page.locator(".messagelist")).to_contain_text(re.compile("lena can sign in again", re.I))
        expect(owner_page.locator("section[aria-labelledby=lockout-title]")).to_have_count(0)
    finally:
        owner_context.close()

    submit(page, "lena", PASSWORD)
    expect(page).to_have_url(re.compile(r"/admin/$"))
    problems = [p for p in watcher.take() if "status of 429" not in p]
    assert problems == []
