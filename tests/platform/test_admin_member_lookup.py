"""Finding 8 in the staff UI: the membership form adds only users of no other organisation and
refuses an unknown and a foreign user with the same error."""

from __future__ import annotations

import re

import pytest

from prisma_glow.tenancy.models import Membership
from prisma_glow.tenancy.services import USER_NOT_ADDABLE_MESSAGE
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

ADD = "/admin/tenancy/membership/add/"


def _field_errors(response) -> list[str]:
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_a_foreign_user_is_refused_like_an_unknown_one(org, other_org, role):
    member = UserFactory(username=f"{role}-of-org")
    MembershipFactory(organization=org, user=member, role=role)
    rival = MembershipFactory(
        organization=other_org, role="owner", user=UserFactory(username="rival", email="rival@other.example")
    ).user
    client = login(member)
    answers = []
    for identifier in ("rival", "rival@other.example", "nobody", "nobody@other.example"):
        response = client.post(ADD, {"user_identifier": identifier, "role": "viewer"})
        assert response.status_code == 200
        answers.append(_field_errors(response))
    assert all(answer == answers[0] for answer in answers), answers
    assert USER_NOT_ADDABLE_MESSAGE.split(";")[0] in answers[0][0]
    assert not Membership.objects.filter(organization=org, user=rival).exists()


def test_a_user_of_no_organisation_is_added(org, admin_role_client):
    newcomer = UserFactory(username="newcomer", email="newcomer@example.com")
    response = admin_role_client.post(ADD, {"user_identifier": "newcomer@example.com", "role": "editor"})
    assert response.status_code == 302, response.content[:2000]
    assert Membership.objects.get(organization=org, user=newcomer).role == "editor"
