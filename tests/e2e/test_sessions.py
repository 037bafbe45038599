"""Sessions in Chromium: the production ``__Host-`` cookies carry a login and the staff UI's htmx
requests, and an idle session ends with the reason on the login page."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.factories import ToolFactory

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


def log_in(page, user) -> None:
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()
    assert "/admin/login/" not in page.url


def test_host_cookies_carry_the_login_and_an_htmx_post(
    context, page, live_server, editor, org, settings, watcher
):
    """ASVS 5.0 V3.3.1, V3.5.1: with the production cookie names (Secure, which Chromium accepts from
    localhost) the login form works and admin_ui.js sends the ``__Host-csrftoken`` value on an htmx
    POST, which passes the CSRF check (the tool page answers 400 for its bad arguments, not 403)."""
    settings.SESSION_COOKIE_NAME = "__Host-sessionid"
    settings.CSRF_COOKIE_NAME = "__Host-csrftoken"
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    tool = ToolFactory(organization=org)
    log_in(page, editor)
    names = {cookie["name"]: cookie for cookie in context.cookies()}
    assert {"__Host-sessionid", "__Host-csrftoken"} <= set(names) and "sessionid" not in names
    assert names["__Host-sessionid"]["secure"] and names["__Host-sessionid"]["sameSite"] == "Lax"
    page.goto(reverse("admin:tools_tool_test", args=[tool.pk]))
    page.wait_for_function("window.htmx !== undefined")
    page.get_by_label("Or the arguments as JSON").fill("{not json")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/{tool.pk}/test/")
    ) as answer:
        page.get_by_role("button", name="Run").click()
    sent = answer.value.request
    assert sent.headers.get("x-csrftoken") == names["__Host-csrftoken"]["value"]
    assert answer.value.status == 400
    assert watcher.take() == []


def test_an_idle_session_ends_with_the_reason_on_the_login_page(context, page, live_server, editor, watcher):
    """ASVS 5.0 V7.3.1: after 30 idle minutes the next page is the login page, saying why."""
    with time_machine.travel(0, tick=True) as traveller:
        traveller.move_to("2026-03-02T09:00:00+00:00")
        log_in(page, editor)
        traveller.shift(timedelta(minutes=31))
        page.goto("/admin/")
        expect(
            page.get_by_text("Your session expired after 30 minutes without activity. Log in again.")
        ).to_be_visible()
        assert "/admin/login/" in page.url
        screenshot(page, "sessions-01-idle-session-expired")
        log_in(page, editor)
    assert watcher.take() == []
