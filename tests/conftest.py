"""Shared fixtures: organisations, members of each role, API keys and authenticated clients.

The staff UI's fixtures (test clients signed in as each role, ``world``) are in ``tests/support/admin.py``,
loaded for every test: each app's tests include its admin pages.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory

pytest_plugins = ["tests.support.admin"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories' users hash a password, and the production hasher costs ~0.5 s a user: MD5 in tests
    (a speed setting, not a security one)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


#: Mid-day in the middle of a month: no budget period (day or month) turns in the minutes after it.
MID_PERIOD = dt.datetime(2027, 3, 17, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def mid_period_clock():
    """The clock starts at ``MID_PERIOD`` and ticks on. For tests that fill a budget's current period,
    or read it back, around a run: on the real clock a day or month could turn between the two and
    the run would count in another period. The turn itself is tested at a pinned moment of its own
    (``test_budgets_runtime``)."""
    with time_machine.travel(MID_PERIOD, tick=True):
        yield


#: The last second of a short month: "today" ends in a second, "this month" reaches back 28 days.
MONTHS_LAST_SECOND = dt.datetime(2027, 2, 28, 23, 59, 59, tzinfo=dt.UTC)


@pytest.fixture
def months_last_second_clock():
    """The clock stands still at ``MONTHS_LAST_SECOND``. For the dashboard's tests: the page reads
    "today" and "this month" when it is asked for, after the test made its runs, and on the real
    clock a day or month could turn in between and move a run out of the range. Request it first
    (``pytest.mark.usefixtures``), so that every fixture's rows are made at that moment too."""
    with time_machine.travel(MONTHS_LAST_SECOND, tick=False):
        yield


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Demo Firm", slug="demo-firm")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Other Firm", slug="other-firm")


def _member(org, role):
    user = UserFactory(username=f"{role}-{org.slug}")
    MembershipFactory(user=user, organization=org, role=role)
    return user


@pytest.fixture
def owner(org):
    return _member(org, "owner")


@pytest.fixture
def admin_user(org):
    return _member(org, "admin")


@pytest.fixture
def editor(org):
    return _member(org, "editor")


@pytest.fixture
def viewer(org):
    return _member(org, "viewer")


@pytest.fixture
def api_client():
    return APIClient()


def client_for(user=None, *, key=None) -> APIClient:
    """An APIClient signed in as ``user`` or sending ``Authorization: Api-Key <key>``."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def editor_client(editor):
    return client_for(editor)


@pytest.fixture
def viewer_client(viewer):
    return client_for(viewer)


@pytest.fixture
def admin_client_api(admin_user):
    return client_for(admin_user)


@pytest.fixture
def api_key(org):
    return APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])


@pytest.fixture
def key_client(api_key):
    return client_for(key=api_key.plaintext)
