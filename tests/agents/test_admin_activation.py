"""The staff UI's activation requests: the approval inbox and its sections, approving with a step-up,
refusing, cancelling, the agent page's request form, one-person activation and the organisation's
setting."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.activation import GateResult, activation_request_create, register_gate, unregister_gate
from agents.admin.activation_pages import register_inbox_section, unregister_inbox_section
from agents.models import ActivationRequest, Agent
from prisma_glow.admin.stepup import CODE_FIELD
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    MembershipFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    release_now,
    totp_code,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db

INBOX = "/admin/approvals/"


def approve_url(row) -> str:
    return f"/admin/agents/agent/activation-requests/{row.pk}/approve/"


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True)
    return agent


@pytest.fixture
def pending(agent, editor):
    return activation_request_create(
        agent=agent, release=release_now(agent, activate=False), actor=editor, notes="Suite run 41 passed."
    )


def with_code(client: Client, url: str, device, data: dict | None = None):
    """POST ``url``; the step-up page asks for a code; send it with the carried fields."""
    page = client.post(url, data or {})
    assert page.status_code == 200 and "admin/pg/step_up.html" in [t.name for t in page.templates]
    device.refresh_from_db()
    return client.post(url, {**(data or {}), CODE_FIELD: totp_code(device)})


def test_inbox_lists_pending_requests_with_release_hash_and_link(admin_user, agent, pending):
    html = login(admin_user).get(INBOX).content.decode()
    assert "Release activations awaiting approval" in html
    assert agent.name in html and pending.release.short_hash in html and "Suite run 41 passed." in html
    assert f"/admin/agents/agent/{agent.pk}/releases/1/" in html
    assert approve_url(pending) in html and "Approve and activate" in html and "Refuse" in html


def test_viewer_sees_the_inbox_without_decisions(viewer_admin_client, pending):
    html = viewer_admin_client.get(INBOX).content.decode()
    assert "Release 1" in html and "Approve and activate" not in html and 'name="reason"' not in html
    assert viewer_admin_client.post(approve_url(pending)).status_code == 403
    assert ActivationRequest.objects.get(pk=pending.pk).status == "pending"


def test_requester_sees_why_they_cannot_approve_and_may_cancel(staff_client, editor, pending, admin_user):
    """The editor who asked may not approve (the role, and four eyes); the admin who asked is told so
    without being asked for a code."""
    html = staff_client.get(INBOX).content.decode()
    assert "Approve and activate" not in html and "Cancel my request" in html
    assert staff_client.post(approve_url(pending)).status_code == 403
    # An admin's own request: four eyes, explained before any code is asked for.
    agent2 = AgentFactory(organization=pending.organization)
    PersonaFactory(agent=agent2, is_active=True)
    own = activation_request_create(
        agent=agent2, release=release_now(agent2, activate=False), actor=admin_user
    )
    client = login(admin_user)
    TOTPDeviceFactory(user=admin_user)
    html = client.get(INBOX).content.decode()
    assert "you cannot approve it: another admin or owner must (four eyes)" in html
    response = client.post(approve_url(own), follow=True)
    assert "four eyes" in response.content.decode()
    assert ActivationRequest.objects.get(pk=own.pk).status == "pending"
    # Cancelling is the requester's.
    response = staff_client.post(f"/admin/agents/agent/activation-requests/{pending.pk}/cancel/", follow=True)
    assert "was cancelled" in response.content.decode()
    assert ActivationRequest.objects.get(pk=pending.pk).status == "cancelled"


def test_approve_asks_a_code_then_activates_and_audits(owner, agent, pending):
    device = TOTPDeviceFactory(user=owner)
    client = login(owner)
    response = with_code(client, approve_url(pending), device, {"next": INBOX})
    assert response.status_code == 302 and response["Location"] == INBOX
    agent.refresh_from_db()
    assert agent.status == "active" and agent.active_release == pending.release
    event = AuditEvent.objects.get(action="activation_request.approve")
    assert event.actor_user == owner and event.after["release_hash"] == pending.release.content_hash
    html = client.get(INBOX).content.decode()
    assert "No activation request is pending." in html and "Latest decisions" in html and "Approved" in html


def test_a_refusing_gate_shows_the_failing_cases_and_keeps_the_request(owner, agent, pending):
    def suite(agent, release):
        return GateResult(
            passed=False, message="Suite 'VAT basics' failed.", failures=["reverse charge (must pass)"]
        )

    register_gate(suite, name="suite")
    try:
        response = login(owner).post(approve_url(pending), follow=True)
    finally:
        unregister_gate("suite")
    html = response.content.decode()
    assert "Suite &#x27;VAT basics&#x27; failed. Failing: reverse charge (must pass)." in html
    assert ActivationRequest.objects.get(pk=pending.pk).status == "pending"
    assert Agent.objects.get(pk=agent.pk).status == "draft"


def test_refuse_needs_a_reason(owner, pending):
    client = login(owner)
    url = f"/admin/agents/agent/activation-requests/{pending.pk}/refuse/"
    html = client.post(url, {"reason": " "}, follow=True).content.decode()
    assert "Say why the activation is refused" in html
    assert ActivationRequest.objects.get(pk=pending.pk).status == "pending"
    html = client.post(url, {"reason": "Case 3 fails."}, follow=True).content.decode()
    assert "was refused" in html and "Case 3 fails." in html
    assert ActivationRequest.objects.get(pk=pending.pk).status == "refused"


def test_other_organisation_requests_are_404(other_world, owner, org):
    client = login(owner)
    row = other_world.activation_request
    assert client.post(approve_url(row)).status_code == 404
    assert (
        client.post(f"/admin/agents/agent/activation-requests/{row.pk}/refuse/", {"reason": "x"}).status_code
        == 404
    )
    assert other_world.agent.name not in client.get(INBOX).content.decode()


def test_agent_page_requests_a_chosen_release_and_shows_the_pending_request(staff_client, agent, editor):
    release_now(agent, activate=False)
    agent.personas.update(system_prompt="Cite the article.")
    release_now(agent, activate=False)
    page = f"/admin/agents/agent/{agent.pk}/overview/"
    html = staff_client.get(page).content.decode()
    assert 'id="request-activation"' in html and '<option value="2">' in html and "Request activation" in html
    staff_client.post(
        f"/admin/agents/agent/{agent.pk}/lifecycle/activate/", {"release": "1", "notes": "Roll back"}
    )
    row = ActivationRequest.objects.get(agent=agent)
    assert row.release.number == 1 and row.requested_by == editor
    html = staff_client.get(page).content.decode()
    assert 'id="activation-pending"' in html and "Roll back" in html


def test_one_person_activation_in_the_admin_asks_a_code_and_activates_at_once(org, owner, agent):
    org.one_person_activation = True
    org.save()
    release_now(agent, activate=False)
    device = TOTPDeviceFactory(user=owner)
    client = login(owner)
    assert "Activate (one-person)" in client.get(f"/admin/agents/agent/{agent.pk}/overview/").content.decode()
    response = with_code(
        client, f"/admin/agents/agent/{agent.pk}/lifecycle/activate/", device, {"release": "1"}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.status == "active"
    row = ActivationRequest.objects.get(agent=agent)
    assert row.status == "approved" and row.requested_by == owner and row.decided_by == owner
    assert AuditEvent.objects.get(action="activation_request.approve").after["self_approved"] is True


def test_organisation_setting_owner_with_step_up_audited(org, owner, admin_user):
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    device = TOTPDeviceFactory(user=owner)
    client = login(owner)
    assert "one_person_activation" in client.get(url).content.decode()
    data = {"name": org.name, "slug": org.slug, "currency": "EUR", "one_person_activation": "on"}
    response = with_code(client, url, device, data)
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.one_person_activation is True
    event = AuditEvent.objects.filter(action="organization.update").latest("id")
    assert event.after["one_person_activation"] is True and event.actor_user == owner
    # An admin may not change it (the organisation page is the owner's).
    assert login(admin_user).post(url, {**data, "one_person_activation": ""}).status_code == 403
    org.refresh_from_db()
    assert org.one_person_activation is True


def test_inbox_accepts_more_sections(owner, pending):
    """Another kind of approval adds a section without changing the inbox: tool calls are one
    (registered by agents.admin), and a further one takes its place by its order."""
    register_inbox_section(
        "test-more",
        template="admin/agents/activation/dashboard_panel.html",
        context=lambda request, organization: {"activation_pending": []},
        order=15,
    )
    try:
        response = login(owner).get(INBOX)
    finally:
        unregister_inbox_section("test-more")
    names = [section["name"] for section in response.context["inbox_sections"]]
    assert names == ["activation_requests", "test-more", "tool_calls"]
    names = [s["name"] for s in login(owner).get(INBOX).context["inbox_sections"]]
    assert names == ["activation_requests", "tool_calls"]  # unregistered: gone again


def test_inbox_query_count_does_not_grow(org, owner, editor, django_assert_max_num_queries):
    def add(n):
        for i in range(n):
            agent = AgentFactory(organization=org)
            PersonaFactory(agent=agent, is_active=True)
            row = activation_request_create(
                agent=agent, release=release_now(agent, activate=False), actor=editor
            )
            if i % 2:
                row.status, row.reason = "refused", "No."
                row.save()

    client = login(owner)
    add(2)
    with django_assert_max_num_queries(12) as few:
        assert client.get(INBOX).status_code == 200
    add(12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(INBOX).content.decode()
    assert html.count("Approve and activate") == 7


def test_dashboard_panel_shows_pending_requests(owner, pending):
    html = login(owner).get("/admin/").content.decode()
    assert "Activations awaiting approval" in html and pending.agent.name in html
    assert "Open the approval inbox" in html


def test_anonymous_and_non_members(pending):
    assert Client().get(INBOX).status_code == 302
    stranger = UserFactory(username="stranger", is_staff=True)
    assert login(stranger).get(INBOX).status_code == 403
    other = UserFactory(username="member-elsewhere")
    MembershipFactory(user=other, organization=pending.organization, role="viewer")
    assert login(other).get(INBOX).status_code == 200
