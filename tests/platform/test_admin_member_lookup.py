"""Finding 8 in the staff UI: no one is attached to an organisation without their consent. The admin
invites instead, and the answer to the inviter is the same page whether the address is unknown, a
user of no organisation or a member of another firm."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.utils import timezone

from prisma_glow.tenancy.models import Invitation, Membership
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

INVITE = "/admin/tenancy/invitation/add/"


def _answer(response, email: str) -> str:
    """The sent page without what legitimately differs (the address, the times)."""
    html = response.content.decode()
    main = html.split('id="content-main"', 1)[1].split("</section>", 1)[0]
    main = main.replace(email, "EMAIL")
    return re.sub(r"\d{1,2} \w{3} \d{4} \d\d:\d\d", "WHEN", main)


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_inviting_a_foreign_user_reads_like_inviting_an_unknown_address(org, other_org, role, mailoutbox):
    member = UserFactory(username=f"{role}-of-org")
    MembershipFactory(organization=org, user=member, role=role)
    rival = MembershipFactory(
        organization=other_org, role="owner", user=UserFactory(username="rival", email="rival@other.example")
    ).user
    UserFactory(username="loner", email="loner@example.com")
    client = login(member)
    answers = []
    # The e-mails say until when the link works, to the minute: the three invitations are made at one
    # instant, so a minute turning between two of them cannot make their texts differ.
    with time_machine.travel(timezone.now(), tick=False):
        for email in ("rival@other.example", "loner@example.com", "nobody@other.example"):
            response = client.post(INVITE, {"email": email, "role": "viewer"})
            assert response.status_code == 200
            answers.append(_answer(response, email))
    assert all(answer == answers[0] for answer in answers), answers
    # Nobody was attached: the rival stays outside until they accept.
    assert not Membership.objects.filter(organization=org, user=rival).exists()
    assert Invitation.objects.filter(organization=org).count() == 3
    bodies = [message.body.replace(message.to[0], "EMAIL") for message in mailoutbox]
    links = [re.search(r"http\S+", body).group(0) for body in bodies]
    assert len(set(links)) == 3
    assert len({body.replace(link, "LINK") for body, link in zip(bodies, links, strict=True)}) == 1
