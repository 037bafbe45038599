"""Fixtures of the admin tests: Django test clients signed in as members of each role."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(editor):
    """An editor of ``org`` (staff, as every member who uses the admin)."""
    return editor


@pytest.fixture
def staff_client(editor):
    return login(editor)


@pytest.fixture
def viewer_admin_client(viewer):
    return login(viewer)


@pytest.fixture
def admin_role_client(admin_user):
    return login(admin_user)


@pytest.fixture
def non_staff_client(org):
    user = UserFactory(username="not-staff", is_staff=False)
    MembershipFactory(user=user, organization=org, role="owner")
    return login(user)


@pytest.fixture
def outsider_org(db):
    return OrganizationFactory(name="Elsewhere", slug="elsewhere")
