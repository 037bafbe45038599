"""ASVS 5.0 chapter V6 (authentication): the sign-in lockout (django-axes, prisma_glow/tenancy/lockout.py).

Real requests to the admin's login page from addresses set with REMOTE_ADDR (the address the
application trusts: a proxy sets it from its own header); the lock's state is axes' table, its events
the audit log.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.lockout import locked_logins
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password
LOGIN = "/admin/login/"
HOME = "10.0.0.7"
ELSEWHERE = "10.0.0.8"


@pytest.fixture
def member(org):
    user = UserFactory(username="lena")
    MembershipFactory(user=user, organization=org, role="editor")
    return user


def sign_in(username, password, *, address=HOME, client=None):
    client = client or Client(REMOTE_ADDR=address)
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def fail(username, times, *, address=HOME):
    """``times`` wrong passwords; the answers (the ordinary "wrong username or password" page until the
    limit, the locked page from the failure that reaches it)."""
    return [sign_in(username, "wrong-password", address=address) for _ in range(times)]


def locked_page(response) -> str:
    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many failed sign-ins for this username from your address" in text
    assert "locked until" in text
    return text


def test_five_failures_lock_the_pair_even_with_the_right_password(member):
    """ASVS 5.0 V6.3.1: repeated failed sign-ins are throttled — after 5 failures the right password
    from the same address is refused, on the login page, saying until when."""
    for response in fail("lena", 4):
        assert response.status_code == 200
        assert b"correct username and password" in response.content
    locked_page(fail("lena", 1)[0])  # the fifth failure locks, and says so
    response = sign_in("lena", PASSWORD)
    text = locked_page(response)
    assert "in 15 minutes" in text
    assert "<form" in text and 'name="username"' in text  # the admin's own login page, not a bare error
    assert "_auth_user_id" not in response.wsgi_request.session


def test_four_failures_do_not_lock_and_a_success_forgets_them(member):
    """ASVS 5.0 V6.3.1: the limit is 5 failures; a successful sign-in resets the count."""
    assert [r.status_code for r in fail("lena", 4)] == [200] * 4
    response = sign_in("lena", PASSWORD)
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="lena").exists()


def test_another_address_is_not_locked(member):
    """ASVS 5.0 V6.3.1: the lock is of the (username, address) pair: an attacker cannot lock a
    member out from elsewhere."""
    fail("lena", 5)
    assert sign_in("lena", PASSWORD, address=ELSEWHERE).status_code == 302


def test_the_address_is_remote_addr_never_a_client_header(member):
    """ASVS 5.0 V6.3.1: a client cannot step around its lock by sending X-Forwarded-For."""
    fail("lena", 5)
    client = Client(REMOTE_ADDR=HOME, HTTP_X_FORWARDED_FOR=ELSEWHERE)
    response = client.post(LOGIN, {"username": "lena", "password": PASSWORD}, REMOTE_ADDR=HOME)
    locked_page(response)


def test_an_unknown_username_locks_and_reads_the_same(member):
    """ASVS 5.0 V6.3.8: the locked page does not tell whether the username exists."""
    fail("lena", 5)
    fail("nobody-here", 5)
    # Both locks from the same instant: the page says the clock time the lock ends, and two locks
    # taken either side of a minute's turn would read differently for that reason alone.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get(username="lena").attempt_time)
    known = locked_page(sign_in("lena", PASSWORD))
    unknown = locked_page(sign_in("nobody-here", PASSWORD))

    def message(text):
        start = text.index("Too many failed sign-ins")
        return text[start : text.index("</p>", start)]

    assert message(known) == message(unknown)


def test_the_lock_ends_after_the_window(member):
    """ASVS 5.0 V6.3.1: the lock lasts 15 minutes (PRISMA_GLOW_LOCKOUT_MINUTES), then the right
    password signs in."""
    fail("lena", 5)
    locked_page(sign_in("lena", PASSWORD))
    # 14 minutes later: still locked.
    AccessAttempt.objects.filter(username="lena").update(
        attempt_time=AccessAttempt.objects.get(username="lena").attempt_time - dt.timedelta(minutes=14)
    )
    locked_page(sign_in("lena", PASSWORD))
    # Past 15 minutes: free again.
    AccessAttempt.objects.filter(username="lena").update(
        attempt_time=AccessAttempt.objects.get(username="lena").attempt_time - dt.timedelta(minutes=2)
    )
    assert sign_in("lena", PASSWORD).status_code == 302


def test_the_limits_come_from_the_settings(member, settings):
    """ASVS 5.0 V6.3.1: the failure limit and window are settings (PRISMA_GLOW_LOCKOUT_FAILURES)."""
    settings.AXES_FAILURE_LIMIT = 2
    fail("lena", 2)
    locked_page(sign_in("lena", PASSWORD))


def test_attempts_while_locked_do_not_extend_the_lock(member):
    """ASVS 5.0 V6.3.1: the lock ends when the page said, however often the pair keeps trying."""
    fail("lena", 5)
    first = AccessAttempt.objects.get(username="lena")
    for _ in range(3):
        locked_page(sign_in("lena", "wrong-password"))
    again = AccessAttempt.objects.get(username="lena")
    assert (again.attempt_time, again.failures_since_start) == (first.attempt_time, 5)


def test_the_lock_is_audited_once_in_the_members_organisations(member, org, other_org):
    """ASVS 5.0 V16.3.1 (authentication events logged): the lock is an audit event of each of the
    user's organisations, with the address; refused attempts while locked add none."""
    MembershipFactory(user=member, organization=other_org, role="viewer")
    fail("lena", 5)
    locked_page(sign_in("lena", PASSWORD))
    events = AuditEvent.objects.filter(action="login.locked")
    assert sorted(e.organization_id for e in events) == sorted([org.pk, other_org.pk])
    event = events.get(organization=org)
    assert event.ip == HOME and event.after["username"] == "lena" and event.after["failures"] == 5
    assert event.object_id == str(member.pk)
    assert PASSWORD not in str(event.after) and "wrong-password" not in str(event.after)
    # Nor does axes' record of the failures keep the passwords typed.
    assert "wrong-password" not in AccessAttempt.objects.get(username="lena").post_data


def test_a_lock_of_an_unknown_username_is_a_system_event(db):
    """ASVS 5.0 V16.3.1: a lock of a username no member has is audited without an organisation."""
    fail("ghost", 5)
    event = AuditEvent.objects.get(action="login.locked")
    assert event.organization_id is None and event.after["username"] == "ghost"


# --- Owners see and lift their members' locks ---------------------------------------------------


def test_owners_see_locks_on_the_dashboard_and_unlock(member, owner, org):
    """ASVS 5.0 V6.3.1: an owner sees a member's lock on the dashboard and lifts it (audited)."""
    fail("lena", 5)
    client = login(owner)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Locked sign-ins" in page and "lena" in page and HOME in page
    url = reverse("admin:tenancy_membership_unlock_login", args=[member.memberships.get().pk])
    response = client.post(url, {"ip_address": HOME})
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="lena").exists()
    assert sign_in("lena", PASSWORD).status_code == 302
    event = AuditEvent.objects.get(action="login.unlocked")
    assert (event.organization_id, event.actor_user_id, event.after["ip_address"]) == (org.pk, owner.pk, HOME)
    assert "Locked sign-ins" not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_other_roles_neither_see_nor_lift_locks(member, org, role):
    """ASVS 5.0 V8.2.1: only owners unlock; others get the refusal as an admin page (403)."""
    user = UserFactory(username=f"{role}-x")
    MembershipFactory(user=user, organization=org, role=role)
    fail("lena", 5)
    client = login(user)
    assert "Locked sign-ins" not in client.get(reverse("admin:index")).content.decode()
    url = reverse("admin:tenancy_membership_unlock_login", args=[member.memberships.get().pk])
    response = client.post(url)
    assert response.status_code == 403
    text = response.content.decode()
    assert "cannot unlock members&#x27; sign-ins; it needs owner or higher." in text
    assert 'id="header"' in text and reverse("admin:index") in text  # the admin's layout, a way back
    assert AccessAttempt.objects.filter(username="lena").exists()


@pytest.fixture
def other_owner(other_org):
    user = UserFactory(username="owner-elsewhere")
    MembershipFactory(user=user, organization=other_org, role="owner")
    return user


def test_another_organisations_member_is_404(member, other_owner):
    """ASVS 5.0 V8.2.2: an owner of another organisation cannot reach this one's member."""
    fail("lena", 5)
    url = reverse("admin:tenancy_membership_unlock_login", args=[member.memberships.get().pk])
    assert login(other_owner).post(url).status_code == 404
    assert AccessAttempt.objects.filter(username="lena").exists()


def test_unlock_needs_post_and_a_valid_address(member, owner):
    """Bad input: GET is refused (405); a malformed address is a message, not a 500."""
    fail("lena", 5)
    client = login(owner)
    url = reverse("admin:tenancy_membership_unlock_login", args=[member.memberships.get().pk])
    assert client.get(url).status_code == 405
    response = client.post(url, {"ip_address": "not-an-ip"}, follow=True)
    assert response.status_code == 200
    assert "is not an IP address" in response.content.decode()
    assert AccessAttempt.objects.filter(username="lena").exists()


def test_anonymous_cannot_unlock(member):
    """ASVS 5.0 V8.2.1: the unlock page needs a signed-in staff user."""
    fail("lena", 5)
    url = reverse("admin:tenancy_membership_unlock_login", args=[member.memberships.get().pk])
    response = Client().post(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert AccessAttempt.objects.filter(username="lena").exists()


def test_locked_logins_lists_only_the_organisations_members(member, org, other_owner):
    """The panel's read: locks of this organisation's members, in force now."""
    fail("lena", 5)
    fail("ghost", 5)
    fail("owner-elsewhere", 5)
    fail("lena", 3, address=ELSEWHERE)  # not locked
    assert [(lock.membership.user.username, lock.ip_address) for lock in locked_logins(organization=org)] == [
        ("lena", HOME)
    ]


# --- The operator's command -------------------------------------------------------------------------


def test_unlock_login_command(member, org):
    """ASVS 5.0 V6.3.1: `manage.py unlock_login USERNAME [--address IP]` lifts a lock, audited."""
    fail("lena", 5)
    fail("lena", 5, address=ELSEWHERE)
    out = StringIO()
    call_command("unlock_login", "lena", "--address", ELSEWHERE, stdout=out)
    assert "Unlocked lena from 10.0.0.8" in out.getvalue()
    assert sign_in("lena", PASSWORD, address=ELSEWHERE).status_code == 302
    locked_page(sign_in("lena", PASSWORD))
    call_command("unlock_login", "lena", stdout=out)
    assert sign_in("lena", PASSWORD).status_code == 302
    events = AuditEvent.objects.filter(action="login.unlocked", organization=org)
    assert events.count() == 2 and all(e.actor_label == "" and e.actor_user_id is None for e in events)


def test_unlock_login_command_bad_input(db):
    """Bad input: a malformed address is a CommandError; nothing to unlock is said so."""
    with pytest.raises(CommandError, match="not an IP address"):
        call_command("unlock_login", "lena", "--address", "nope")
    out = StringIO()
    call_command("unlock_login", "nobody", stdout=out)
    assert "nothing to unlock" in out.getvalue()
    assert not AuditEvent.objects.filter(action="login.unlocked").exists()


def test_sign_in_without_a_request_still_works(member):
    """The test client's login() and code checking a password outside a request are not locked
    (there is no address): the lockout backend leaves them to Django's."""
    assert Client().login(username="lena", password=PASSWORD)
