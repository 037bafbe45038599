"""ASVS 5.0 chapter V7, session management: a new key at login, idle and absolute expiry, ending sessions.

Time travels with time-machine (no sleeping); sessions are the real database-backed ones, signed in
through the admin's real login form or Django's test client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.test import APIClient

from prisma_glow import sessions
from prisma_glow.exceptions import ConflictError
from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import Membership
from tests.factories import MembershipFactory, UserFactory

PASSWORD = "correct-horse-battery"
LOGIN = "/admin/login/"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sign_in(user, client=None) -> Client:
    """Signs in through the admin's login form, as a person does."""
    client = client or Client()
    form = {"username": user.username, "password": PASSWORD, "next": "/admin/"}
    extra = {"format": "multipart"} if isinstance(client, APIClient) else {}
    response = client.post(LOGIN, form, **extra)
    assert response.status_code == 302 and response["Location"] == "/admin/", response.content[:500]
    return client


def session_key(client) -> str | None:
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie else None


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def api_status(client) -> int:
    return client.get("/api/v1/organization/").status_code


@pytest.fixture
def travel():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


# --- V7.2: new session key at authentication -----------------------------------------------------


def test_login_gives_a_new_session_key(owner):
    """ASVS 5.0 V7.2.4: a new session token is generated on authentication; the one held before the
    login (e.g. planted by an attacker) is no longer valid."""
    client = Client()
    store = client.session  # an anonymous session with a row, as one planted before the login
    store["planted"] = "value"
    store.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    before = store.session_key
    sign_in(owner, client)
    after = session_key(client)
    assert after and after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert Session.objects.filter(session_key=after).exists()


def test_renew_gives_a_new_key_and_keeps_the_login(owner, rf):
    """ASVS 5.0 V7.2.4: re-authentication (a step-up) renews the token through ``sessions.renew``; the
    session stays signed in and its absolute limit still counts from the login."""
    client = sign_in(owner)
    old = session_key(client)
    store = client.session
    started = store[sessions.STARTED]
    request = rf.get("/admin/")
    request.session = store
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5), tick=False):
        sessions.renew(request)
        store.save()
        assert store.session_key != old
        assert store[sessions.STARTED] == started
        assert store[sessions.LAST_SEEN] == sessions.now_seconds()
    assert not Session.objects.filter(session_key=old).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    assert signed_in(client)


def test_session_key_has_at_least_128_bits(owner):
    """ASVS 5.0 V7.2.3: session tokens are random with at least 128 bits of entropy (Django: 32
    characters from a 36-letter alphabet, about 165 bits)."""
    key = session_key(sign_in(owner))
    assert len(key) >= 32 and key.isalnum()


# --- V7.3: idle and absolute timeouts -------------------------------------------------------------


def test_idle_session_expires_in_the_admin_with_a_message(owner, travel):
    """ASVS 5.0 V7.3.1: a session idle for PRISMA_GLOW_SESSION_IDLE_MINUTES ends; the admin sends the
    person to its login page and says why."""
    client = sign_in(owner)
    travel.shift(timedelta(minutes=29))
    assert signed_in(client)
    travel.shift(timedelta(minutes=29))  # active 29 minutes ago: still within the limit
    assert signed_in(client)
    travel.shift(timedelta(minutes=30))
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain and response.redirect_chain[-1][0].startswith(LOGIN)
    assert (
        "Your session expired after 30 minutes without activity. Log in again." in response.content.decode()
    )
    assert not signed_in(client)


def test_idle_session_expires_for_an_htmx_request_by_reloading_the_page(owner, travel):
    """ASVS 5.0 V7.3.1: an HTMX request on an expired session does not swap the login page into a
    fragment: a 401 reloads the page (HX-Refresh), which then shows the login page and the reason."""
    client = sign_in(owner)
    travel.shift(timedelta(minutes=31))
    response = client.get("/admin/", HTTP_HX_REQUEST="true")
    assert response.status_code == 401 and response["HX-Refresh"] == "true"
    assert "30 minutes without activity" in response.content.decode()
    page = client.get("/admin/", follow=True)
    assert page.redirect_chain[-1][0].startswith(LOGIN)
    assert "Your session expired after 30 minutes without activity. Log in again." in page.content.decode()


def test_absolute_limit_ends_an_active_session(owner, travel, settings):
    """ASVS 5.0 V7.3.2: a session ends PRISMA_GLOW_SESSION_MAX_HOURS after the login, however active."""
    client = sign_in(owner)
    for _ in range(11 * 3):  # a request every 20 minutes for 11 hours
        travel.shift(timedelta(minutes=20))
        assert signed_in(client)
    for step in (29, 29, 1):  # 11:58, 11:59 after the login
        travel.shift(timedelta(minutes=step))
        assert signed_in(client)
    travel.shift(timedelta(minutes=1))
    response = client.get("/admin/", follow=True)
    assert "sessions last at most 12 hours" in response.content.decode()
    assert not signed_in(client)


def test_limits_follow_the_settings(owner, travel, settings):
    """ASVS 5.0 V7.3.1: the idle limit is PRISMA_GLOW_SESSION_IDLE_MINUTES, not a constant."""
    settings.PRISMA_GLOW_SESSION_IDLE_MINUTES = 5
    client = sign_in(owner)
    travel.shift(timedelta(minutes=4))
    assert signed_in(client)
    travel.shift(timedelta(minutes=5))
    assert not signed_in(client)


def test_idle_session_expires_for_the_api(owner, travel):
    """ASVS 5.0 V7.3.1: the API's session authentication obeys the same limits, answering 401
    ``session_expired`` with a message a person can act on."""
    client = sign_in(owner, APIClient())
    assert api_status(client) == 200
    travel.shift(timedelta(minutes=31))
    response = client.get("/api/v1/organization/")
    assert response.status_code == 401
    body = response.json()
    assert body == {
        "status": 401,
        "code": "session_expired",
        "message": "Your session expired after 30 minutes without activity. Log in again.",
        "errors": {},
    }
    # The session is gone, not merely refused once: the next request is simply unauthenticated.
    assert client.get("/api/v1/organization/").json()["code"] == "not_authenticated"


def test_absolute_limit_for_the_api(owner, travel):
    """ASVS 5.0 V7.3.2: an API session ends at the absolute limit even when used every minute."""
    client = sign_in(owner, APIClient())
    for step in [29] * 24 + [23]:  # a request every 29 minutes, the last at 11:59 after the login
        travel.shift(timedelta(minutes=step))
        assert api_status(client) == 200
    travel.shift(timedelta(minutes=1))
    assert client.get("/api/v1/organization/").json()["code"] == "session_expired"


def test_last_seen_is_written_at_most_once_a_minute(owner, travel):
    """Activity is recorded without a session write on every request: a second request within the
    minute does not save the session."""
    client = sign_in(owner)
    travel.shift(timedelta(minutes=2))
    signed_in(client)
    seen = client.session[sessions.LAST_SEEN]
    assert seen == sessions.now_seconds()
    travel.shift(timedelta(seconds=30))
    signed_in(client)
    assert client.session[sessions.LAST_SEEN] == seen
    travel.shift(timedelta(seconds=30))
    signed_in(client)
    assert client.session[sessions.LAST_SEEN] == seen + 60


def test_api_key_with_a_stale_session_cookie_is_not_refused(owner, api_key, travel):
    """An expired session cookie beside an API key does not stand in the key's way."""
    client = sign_in(owner, APIClient())
    travel.shift(timedelta(hours=13))
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.plaintext}")
    assert api_status(client) == 200


# --- V7.4: ending sessions ------------------------------------------------------------------------


def test_password_change_ends_the_other_sessions_and_keeps_this_one(owner):
    """ASVS 5.0 V7.4.3: changing the password ends the user's other sessions (Django's session auth
    hash); the session that changed it stays signed in, under a new key."""
    laptop = sign_in(owner)
    phone = sign_in(owner)
    before = session_key(laptop)
    response = laptop.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase-42",
            "new_password2": "a-new-long-passphrase-42",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert signed_in(laptop)
    assert session_key(laptop) != before
    assert not signed_in(phone)


def test_password_set_elsewhere_ends_every_session(owner):
    """ASVS 5.0 V7.4.3: a password set by someone else (a superuser, ``changepassword``) ends all of
    the user's sessions."""
    client = sign_in(owner)
    api = sign_in(owner, APIClient())
    owner.set_password("reset-by-a-superuser-99")
    owner.save()
    assert not signed_in(client)
    assert api_status(api) in (401, 403)


def test_end_user_sessions_keeps_the_callers_session(owner, editor, rf):
    """ASVS 5.0 V7.4.3: the hook for a changed second factor ends every other session of the user,
    keeps (and renews) the caller's, and leaves other users alone."""
    here = sign_in(owner)
    elsewhere = sign_in(owner)
    colleague = sign_in(editor)
    request = rf.post("/")
    request.session = here.session
    old = request.session.session_key
    assert sessions.end_user_sessions(user=owner, keep=request) == 1
    assert request.session.session_key != old
    here.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key
    assert signed_in(here)
    assert not signed_in(elsewhere)
    assert signed_in(colleague)


def test_removing_a_member_ends_their_sessions(org, owner):
    """ASVS 5.0 V7.4.2: removing a member signs them out everywhere, admin and API alike."""
    member = MembershipFactory(organization=org, role="editor").user
    other_member = MembershipFactory(organization=org, role="editor").user
    admin = sign_in(member)
    api = sign_in(member, APIClient())
    bystander = sign_in(other_member)
    membership = Membership.objects.get(user=member, organization=org)
    services.membership_remove(membership=membership, actor=owner)
    assert not Session.objects.filter(session_key__in=[session_key(admin), session_key(api)]).exists()
    assert not signed_in(admin)
    assert signed_in(bystander)


def test_removing_a_member_through_the_api_ends_their_sessions(org, owner):
    """ASVS 5.0 V7.4.2: the API's member removal ends the removed member's sessions."""
    membership = MembershipFactory(organization=org, role="viewer")
    theirs = sign_in(membership.user)
    owners = sign_in(owner, APIClient())
    response = owners.delete(f"/api/v1/members/{membership.pk}/")
    assert response.status_code == 204, response.content
    assert not Session.objects.filter(session_key=session_key(theirs)).exists()
    assert signed_in(owners)


def test_a_failed_removal_ends_no_session(org, owner):
    """Removing the last owner is refused, and the owner's sessions survive the refusal."""
    client = sign_in(owner)
    with pytest.raises(ConflictError):
        services.membership_remove(membership=Membership.objects.get(user=owner), actor=owner)
    assert signed_in(client)


def test_logout_ends_the_session_server_side(owner):
    """ASVS 5.0 V7.4.1: logging out deletes the session; its key, replayed, is not signed in."""
    client = sign_in(owner)
    key = session_key(client)
    assert client.post("/admin/logout/").status_code == 200
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert not signed_in(replay)


def test_a_new_user_signs_in_with_fresh_timestamps(db, travel):
    """A new login on the same browser starts a new absolute limit."""
    user = UserFactory(username="returning")
    client = sign_in(user)
    travel.shift(timedelta(hours=11))
    sign_in(user, client)
    travel.shift(timedelta(hours=2))
    assert client.session[sessions.STARTED] == int((T0 + timedelta(hours=11)).timestamp())
