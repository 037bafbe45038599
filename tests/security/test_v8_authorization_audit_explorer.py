"""ASVS 5.0 chapter V8 (authorization) for the audit explorer (issue 18): who may read the audit log's
staff page and its CSV export, and that another organisation's events, agents and people never appear."""

from __future__ import annotations

import csv
import io

import pytest

from agents import services as agent_services
from prisma_glow.audit.models import AuditEvent
from tests.factories import AgentFactory, MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

URL = "/admin/audit/auditevent/"


@pytest.fixture
def ours(org, editor):
    agent = AgentFactory(organization=org, name="VAT adviser")
    agent_services.agent_update(agent=agent, actor=editor, description="ours")
    return agent


def test_v8_2_1_only_admins_and_owners_read_the_explorer_and_its_export(
    client, staff_client, viewer_admin_client, owner_client, admin_role_client, ours
):
    """ASVS 5.0 V8.2.1: function-level access — the explorer and its CSV need ``audit.view`` (admins,
    owners), as the audit log always did; editors and viewers get 403, anonymous users the sign-in page."""
    for allowed in (owner_client, admin_role_client):
        assert allowed.get(URL).status_code == 200
        assert allowed.get(URL, {"export": "csv"}).status_code == 200
    for refused in (staff_client, viewer_admin_client):
        assert refused.get(URL).status_code == 403
        assert refused.get(URL, {"export": "csv"}).status_code == 403
    response = client.get(URL, {"export": "csv"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_v8_2_2_another_organisations_events_agents_and_people_never_appear(ours, editor, other_org):
    """ASVS 5.0 V8.2.2: data-specific access — an admin of another organisation sees only its own
    events, in the page, its choices and the export; our agent's id as a filter is refused, our event's
    page answers 404."""
    theirs = AgentFactory(organization=other_org, name="Their agent")
    stranger = UserFactory(username="theirs")
    MembershipFactory(user=stranger, organization=other_org, role="admin")
    agent_services.agent_update(agent=theirs, actor=stranger, description="theirs")
    client = login(stranger)
    html = client.get(URL).content.decode()
    assert "Their agent" in html and "VAT adviser" not in html and editor.username not in html
    export = client.get(URL, {"export": "csv"})
    found = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [r["agent"] for r in found] == ["Their agent"]
    refused = client.get(URL, {"agent": ours.pk}).content.decode()
    assert "Select a valid choice" in refused and "VAT adviser" not in refused
    ours_event = AuditEvent.objects.get(action="agent.update", object_id=str(ours.pk))
    assert client.get(f"{URL}{ours_event.pk}/change/").status_code == 404
