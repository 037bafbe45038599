"""Ids and codes typed as text are ASCII digits: ``"²".isdigit()`` and ``"٣".isdigit()`` are true in
Python, but ``int()`` refuses the first, and a code of Unicode digits is no authenticator's code. Each
door that reads a number from a query string or a form answers such text as it answers any wrong value
(ignored, refused with a message), never with a 500 (``prisma_glow.ids.parse_id``).

ASVS 5.0 V2.2.1: input is validated against what it may be (positive validation)."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import ActivationRequest
from prisma_glow import factors
from tests.factories import (
    AgentFactory,
    MembershipFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    release_now,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "²"  # isdigit() is true; int() raises
ARABIC_THREE = "٣"  # isdigit() is true; int() reads it as 3
UNICODE_IDS = [SUPERSCRIPT_TWO, ARABIC_THREE * 2, "1" * 19]


@pytest.mark.parametrize("value", UNICODE_IDS)
@pytest.mark.parametrize(
    "url, parameter",
    [
        ("/admin/agents/execution/", "agent"),
        ("/admin/agents/conversation/", "agent"),
        ("/admin/agents/agent/", "owner"),
        ("/admin/knowledge/document/", "knowledge_base"),
    ],
)
def test_list_filters_ignore_an_id_that_is_not_ascii_digits(owner, url, parameter, value):
    response = login(owner).get(url, {parameter: value})
    assert response.status_code in (200, 302), response.status_code  # Django's admin may drop the filter


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, ARABIC_THREE, "9" * 12])
def test_an_activation_request_for_a_release_that_is_no_number_is_refused(org, owner, editor, value):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    release_now(agent, activate=False)
    response = login(editor).post(
        f"/admin/agents/agent/{agent.pk}/lifecycle/activate/", {"release": value, "notes": ""}, follow=True
    )
    assert response.status_code == 200
    # ``int("٣") == 3`` would pick release 3 (or 1 for "١"): a release is named with ASCII digits.
    request = ActivationRequest.objects.filter(agent=agent).first()
    assert request is None or request.release.number == 1  # the latest release, as for no choice


def test_a_code_of_unicode_digits_is_a_wrong_code_not_an_error(org):
    user = UserFactory(username="mira", password="correct-horse-battery")
    MembershipFactory(user=user, organization=org, role="editor")
    device = TOTPDeviceFactory(user=user)
    assert factors.is_backup_code(SUPERSCRIPT_TWO * 6)  # not six ASCII digits: not an authenticator's code
    assert not device.verify_token(SUPERSCRIPT_TWO * 6)
    assert not device.verify_token(ARABIC_THREE * 6)
    client = Client()
    client.post("/admin/login/", {"username": "mira", "password": "correct-horse-battery"})
    response = client.post("/admin/login/code/", {"code": SUPERSCRIPT_TWO * 6})
    html = response.content.decode()
    assert response.status_code == 200 and "backup code is not right" in html  # not six ASCII digits
    assert "_auth_user_id" not in client.session
