"""ASVS 5.0 level 2, chapter V6 (Authentication), as far as onboarding colleagues goes: the invitation
link as an activation code, the password the colleague sets, and the inviter learning nothing about
which accounts exist."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import Invitation, Membership
from tests.conftest import client_for
from tests.factories import InvitationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-pass-phrase-9"


def _link(message) -> str:
    return re.search(r"https?://\S+/invitation/(\S+)/", message.body).group(1)


def test_v6_4_1_the_activation_link_is_random_one_time_short_lived_and_stored_hashed(org, owner, mailoutbox):
    """ASVS 5.0 V6.4.1: the invitation's secret has 256 random bits, is stored only as a hash (the
    database holds no usable link), works once, and expires after PRISMA_GLOW_INVITATION_HOURS (48);
    it never becomes a password: the colleague sets their own."""
    client = client_for(owner)
    for n in range(2):
        client.post("/api/v1/members/invite/", {"email": f"c{n}@firm.example"}, format="json")
    tokens = [_link(m) for m in mailoutbox]
    assert len(set(tokens)) == 2 and all(len(t) >= 43 for t in tokens)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenancy_invitation")
        dump = str(cursor.fetchall())
    assert not any(token in dump for token in tokens)
    with time_machine.travel(timezone.now() + timedelta(hours=48, seconds=1)):
        assert Client().get(f"/invitation/{tokens[0]}/").status_code == 410
    user = services.invitation_sign_up(token=tokens[1], username="c1", password=PASSWORD)
    assert not user.check_password(tokens[1]) and user.check_password(PASSWORD)
    assert Client().get(f"/invitation/{tokens[1]}/").status_code == 410


@pytest.mark.parametrize(
    ("password", "rule"),
    [("short1!", "too short"), ("password123", "too common"), ("8439201857", "entirely numeric")],
)
def test_v6_2_1_v6_2_4_the_colleagues_password_follows_the_policy(org, password, rule):
    """ASVS 5.0 V6.2.1 (at least 8 characters) and V6.2.4 (not a common password): the accept page
    applies Django's validators to the password the colleague chooses."""
    invitation = InvitationFactory(organization=org)
    form = {"username": "newcomer", "password": password, "password_again": password}
    response = Client().post(f"/invitation/{invitation.token}/", form)
    assert response.status_code == 200 and rule in response.content.decode()
    assert not Membership.objects.filter(organization=org, user__username="newcomer").exists()


def test_v6_3_8_the_inviter_cannot_tell_which_addresses_have_accounts(org, other_org, owner, mailoutbox):
    """ASVS 5.0 V6.3.8: inviting an unknown address, a user of no organisation and another firm's
    member gives the same status and body (the address and times aside) and the same e-mail text; the
    link is never in the answer outside development."""
    UserFactory(username="loner", email="loner@firm.example")
    MembershipFactory(organization=other_org, user=UserFactory(username="rival", email="rival@other.example"))
    client = client_for(owner)
    answers = []
    # The e-mails say until when the link works, to the minute: the three invitations are made at one
    # instant, so a minute turning between two of them cannot make their texts differ.
    with time_machine.travel(timezone.now(), tick=False):
        for email in ("nobody@firm.example", "loner@firm.example", "rival@other.example"):
            response = client.post(
                "/api/v1/members/invite/", {"email": email, "role": "viewer"}, format="json"
            )
            body = response.json()
            answers.append(
                (
                    response.status_code,
                    sorted(body),
                    body["role"],
                    re.sub(r"\d\d \w{3} \d{4} \d\d:\d\d", "WHEN", body["message"].replace(email, "EMAIL")),
                )
            )
            assert "link" not in body
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 202
    texts = {re.sub(r"\S+/invitation/\S+/", "LINK", m.body) for m in mailoutbox}
    assert len(texts) == 1


def test_v6_4_1_an_existing_account_is_linked_only_when_its_owner_accepts(
    org, other_org, owner, editor, mailoutbox
):
    """ASVS 5.0 V6.4.1 (and consent): an invitation to an address that has an account attaches nobody;
    another signed-in user cannot accept it; the account's owner accepts after signing in normally."""
    mira = UserFactory(username="mira", email="mira@firm.example")
    MembershipFactory(organization=other_org, user=mira)
    client_for(owner).post("/api/v1/members/invite/", {"email": "mira@firm.example"}, format="json")
    token = _link(mailoutbox[0])
    assert not Membership.objects.filter(organization=org, user=mira).exists()
    intruder = Client()
    intruder.force_login(editor)
    refused = intruder.post(f"/invitation/{token}/")  # 200 (a 4xx would log the link), nothing accepted
    assert refused.status_code == 200 and "Sign out" in refused.content.decode()
    anonymous = Client().get(f"/invitation/{token}/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/?next=")
    assert Invitation.objects.get().accepted_at is None
    signed_in = Client()
    signed_in.force_login(mira)
    assert signed_in.post(f"/invitation/{token}/").status_code == 302
    assert Membership.objects.filter(organization=org, user=mira).exists()
