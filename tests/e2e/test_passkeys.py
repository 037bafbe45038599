"""Browser tests of passkeys with Chromium's virtual authenticator (DevTools' WebAuthn domain: a real
CTAP2 authenticator in the browser, its keys and signatures verified by the server): register a
passkey on the two-step sign-in page, sign out, sign in with the password and the passkey, then a
step-up with the passkey in the middle of an activation; and the plain note on 127.0.0.1."""

from __future__ import annotations

import re
from types import SimpleNamespace

from django.contrib.sessions.models import Session
from django_otp_webauthn.models import WebAuthnCredential
from playwright.sync_api import expect

from agents.models import Agent
from prisma_glow import factors
from prisma_glow.audit.models import AuditEvent
from tests.e2e.conftest import PASSWORD, screenshot, sign_in
from tests.factories import AgentFactory, PersonaFactory, release_now


def virtual_authenticator(context, page) -> None:
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


def test_register_a_passkey_sign_in_with_it_and_step_up_with_it(
    page, context, live_server, org, editor, watcher
):
    """ASVS 5.0 V6.5 / V6.6: a passkey is a second factor at sign-in and for a sensitive operation."""
    assert "localhost" in live_server.url, "passkeys need a host name"
    virtual_authenticator(context, page)
    sign_in(context, live_server, editor)

    # Register: a first factor, so no code is asked; the browser creates the passkey.
    page.goto("/admin/account/security/")
    page.get_by_label("Name of the passkey").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Now create the passkey “Work laptop”")).to_be_visible()
    screenshot(page, "passkeys-01-create")
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.locator("#backup-codes li")).to_have_count(10)
    assert WebAuthnCredential.objects.get(user=editor).name == "Work laptop"
    assert AuditEvent.objects.filter(action="factor.enrolled", after__device="passkey").exists()

    # Sign out, then sign in: the password, then the passkey.
    page.goto("/admin/")
    page.locator("#logout-form button").click()
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(editor.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/login/code/"))
    screenshot(page, "passkeys-02-code-step")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    assert AuditEvent.objects.filter(action="login.second_factor", after__device="passkey").exists()

    # A step-up in the middle of a deprecation, once the sign-in's check is no longer fresh (the
    # session forgets when it was made, as if the step-up window had passed).
    agent = AgentFactory(organization=org, name="VAT adviser", status="active")
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent, activate=False)
    for stored in Session.objects.all():
        data = stored.get_decoded()
        if data.get("_auth_user_id") == str(editor.pk):
            data.pop(factors.CHECKED_AT, None)
            stored.session_data = Session.objects.encode(data)
            stored.save()
    page.goto(f"/admin/agents/agent/{agent.pk}/overview/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Deprecate").click()
    expect(page.locator("h2#step-up-title")).to_contain_text("Deprecate agents: confirm it")
    screenshot(page, "passkeys-03-step-up")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(rf"/admin/agents/agent/{agent.pk}/overview/$"))
    expect(page.locator(".messagelist").first).to_contain_text("is now deprecated")
    assert Agent.objects.get(pk=agent.pk).status == "deprecated"
    assert AuditEvent.objects.filter(action="factor.step_up", after__device="passkey").exists()
    assert watcher.take() == []


def test_on_an_ip_address_the_page_says_plainly_that_passkeys_need_a_host_name(
    page, context, live_server, editor, watcher
):
    ip_url = live_server.url.replace("localhost", "127.0.0.1")
    sign_in(context, SimpleNamespace(url=ip_url), editor)
    page.goto(f"{ip_url}/admin/account/security/")
    expect(page.locator("#passkey-unavailable")).to_contain_text(
        "Passkeys need a host name, not an IP address"
    )
    expect(page.get_by_role("button", name="Add a passkey")).to_have_count(0)
    assert watcher.take() == []
