"""Browser test of onboarding: the owner invites a colleague from the members list, the e-mail carries
the one-time link, the colleague chooses a password, signs in on the normal page and works in the
organisation with the role they were given."""

from __future__ import annotations

import re

from django.core import mail
from playwright.sync_api import expect

from prisma_glow.tenancy.models import Invitation, Membership
from tests.e2e.conftest import screenshot

NEW_PASSWORD = "tax-season-is-coming-42"


def test_an_invitation_accepted_end_to_end(signed_in_page, browser, live_server, org, watcher):
    """ASVS 5.0 V6.4 in the browser: Mira (owner) invites jon@firm.example as editor; Jon opens the
    link, creates his account, signs in and sees Demo Firm with the editor role; the link then no
    longer works."""
    page = signed_in_page
    mail.outbox.clear()
    page.goto("/admin/tenancy/membership/")
    page.get_by_role("link", name="Invite a colleague").click()
    expect(page).to_have_url(re.compile(r"/admin/tenancy/invitation/add/$"))
    expect(page.locator("#id_role option")).to_have_count(4)  # an owner may invite owners
    page.fill("#id_email", "jon@firm.example")
    page.select_option("#id_role", "editor")
    screenshot(page, "invitation-01-invite")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.locator("#content-main")).to_contain_text(
        "An invitation to join as editor was sent to jon@firm.example"
    )
    expect(page.locator(".pg-invitation-link")).to_have_count(0)  # locmem, not the console: no link shown
    page.locator("#content-main").get_by_role("link", name="Invitations").click()
    expect(page.locator("#result_list")).to_contain_text("jon@firm.example")
    expect(page.locator("#result_list")).to_contain_text("pending")

    (message,) = mail.outbox
    link = re.search(r"http://\S+/invitation/\S+/", message.body).group(0)
    assert link.startswith(live_server.url)

    jon_context = browser.new_context(base_url=live_server.url)
    try:
        jon = jon_context.new_page()
        jon.goto(link)
        expect(jon.locator("h1")).to_have_text("Join Demo Firm")
        expect(jon.locator("#content-main")).to_contain_text(
            "invited jon@firm.example to join Demo Firm as editor"
        )
        expect(jon.locator("#id_username")).to_have_value("jon@firm.example")
        jon.fill("#id_username", "jon")
        jon.fill("#id_first_name", "Jon")
        jon.fill("#id_password", "short")
        jon.fill("#id_password_again", "short")
        jon.get_by_role("button", name="Create my account and join").click()
        expect(jon.locator(".errorlist")).to_contain_text("too short")
        jon.fill("#id_password", NEW_PASSWORD)
        jon.fill("#id_password_again", NEW_PASSWORD)
        screenshot(jon, "invitation-02-sign-up")
        jon.get_by_role("button", name="Create my account and join").click()

        # The normal login page, with the news; the second factor is enrolled there when required.
        expect(jon).to_have_url(re.compile(r"/admin/login/$"))
        expect(jon.locator(".messagelist")).to_contain_text("Your account jon is ready")
        jon.fill("#id_username", "jon")
        jon.fill("#id_password", NEW_PASSWORD)
        jon.locator("input[type=submit]").click()
        expect(jon).to_have_url(re.compile(r"/admin/$"))
        expect(jon.locator(".pg-org-name")).to_have_text("Demo Firm")
        expect(jon.locator(".pg-role")).to_have_text("editor")
        screenshot(jon, "invitation-03-signed-in")

        # One time only.
        jon.goto(link)
        expect(jon.locator(".errornote")).to_contain_text("already been used")
    finally:
        jon_context.close()

    membership = Membership.objects.get(organization=org, user__username="jon")
    assert membership.role == "editor" and membership.user.is_staff
    assert Invitation.objects.get().accepted_by == membership.user
    problems = [p for p in watcher.take() if "status of 410" not in p]
    assert problems == []
