"""``/api/v1/agents/{id}/activation-requests/`` and ``/api/v1/activation-requests/``: the four-eyes
flow through the API, with real sessions and real second-factor step-ups."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents.activation import GateResult, activation_request_create, register_gate, unregister_gate
from agents.models import ActivationRequest, Agent
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    MembershipFactory,
    PersonaFactory,
    TOTPDeviceFactory,
    UserFactory,
    release_now,
    totp_code,
)
from tests.support.api import assert_error, results

pytestmark = pytest.mark.django_db

STEP_UP = "/api/v1/auth/step-up/"


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def step_up(client, device) -> None:
    response = client.post(STEP_UP, {"code": totp_code(device)}, format="json")
    assert response.status_code == 200, response.content
    device.refresh_from_db()


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True)
    return agent


@pytest.fixture
def release(agent):
    return release_now(agent, activate=False)


def url(agent, suffix=""):
    return f"/api/v1/agents/{agent.pk}/activation-requests/{suffix}"


def test_the_whole_flow_request_step_up_approve(org, agent, release, editor, admin_user):
    """An editor requests; the admin is asked for a step-up, gives a code, approves; the agent runs
    the release; the request shows who decided and what the gates said."""
    response = client_for(editor).post(url(agent), {"release": 1, "notes": "Suite passed."}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["release"] == 1
    assert body["release_hash"] == release.content_hash and body["requested_by"] == editor.username
    pk = body["id"]

    device = TOTPDeviceFactory(user=admin_user)
    approver = session(admin_user)
    body = assert_error(approver.post(url(agent, f"{pk}/approve/")), 403)
    assert body["code"] == "step_up_required"
    assert Agent.objects.get(pk=agent.pk).status == "draft"
    step_up(approver, device)
    response = approver.post(url(agent, f"{pk}/approve/"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == admin_user.username
    assert body["verdict"]["passed"] is True and body["verdict"]["self_approved"] is False
    agent.refresh_from_db()
    assert agent.status == "active" and agent.active_release == release

    listed = client_for(editor).get(url(agent))
    assert [row["status"] for row in results(listed)] == ["approved"]


def test_the_requester_cannot_approve(agent, release, admin_user):
    row = activation_request_create(agent=agent, release=release, actor=admin_user)
    body = assert_error(client_for(admin_user).post(url(agent, f"{row.pk}/approve/")), 409)
    assert "four eyes" in body["message"] and "one-person activation" in body["message"]
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"


def test_an_api_key_requests_but_cannot_approve(org, agent, release, admin_user):
    key = APIKeyFactory(organization=org, name="CI pipeline", scopes=["write"])
    ci = client_for(key=key.plaintext)
    response = ci.post(url(agent), {"release": 1}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    admin_key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    body = assert_error(client_for(key=admin_key.plaintext).post(url(agent, f"{pk}/approve/")), 403)
    assert body["code"] == "session_required"
    body = assert_error(ci.post(url(agent, f"{pk}/refuse/"), {"reason": "no"}, format="json"), 403)
    assert body["code"] == "session_required"
    # The key that asked may withdraw its request.
    assert ci.post(url(agent, f"{pk}/cancel/"), {}, format="json").json()["status"] == "cancelled"


def test_a_read_key_cannot_request(org, agent, release):
    key = APIKeyFactory(organization=org, scopes=["read"])
    assert_error(client_for(key=key.plaintext).post(url(agent), {"release": 1}, format="json"), 403)


def test_roles_viewer_cannot_request_editor_cannot_approve(agent, release, viewer, editor, owner):
    body = assert_error(client_for(viewer).post(url(agent), {"release": 1}, format="json"), 403)
    assert "viewer" in body["message"]
    row = activation_request_create(agent=agent, release=release, actor=owner)
    body = assert_error(client_for(editor).post(url(agent, f"{row.pk}/approve/")), 403)
    assert "admin" in body["message"]
    assert_error(
        client_for(editor).post(url(agent, f"{row.pk}/refuse/"), {"reason": "x"}, format="json"), 403
    )
    assert client_for(viewer).get(url(agent)).status_code == 200


def test_other_organisation_is_404(other_org, agent, release, editor):
    row = activation_request_create(agent=agent, release=release, actor=editor)
    outsider = UserFactory(username="outsider-admin")
    MembershipFactory(user=outsider, organization=other_org, role="owner")
    client = client_for(outsider)
    assert_error(client.get(url(agent)), 404)
    assert_error(client.post(url(agent, f"{row.pk}/approve/")), 404)
    assert_error(client.get(f"/api/v1/activation-requests/{row.pk}/"), 404)
    assert results(client.get("/api/v1/activation-requests/")) == []


def test_gate_refusal_lists_the_failing_cases_and_keeps_the_request(agent, release, editor, owner):
    def suite(agent, release):
        return GateResult(
            passed=False,
            message="Suite 'VAT basics' run 12 on release 1: 17 of 20 passed (85 %, needs 90 %).",
            failures=["reverse charge (must pass)", "distance selling threshold"],
            evidence={"run": 12},
        )

    register_gate(suite, name="suite")
    try:
        row = activation_request_create(agent=agent, release=release, actor=editor)
        body = assert_error(client_for(owner).post(url(agent, f"{row.pk}/approve/")), 409)
    finally:
        unregister_gate("suite")
    assert body["code"] == "conflict"
    assert "reverse charge (must pass); distance selling threshold" in body["errors"]["gates"][0]
    assert "stays pending" in body["message"]
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"
    assert Agent.objects.get(pk=agent.pk).status == "draft"
    # Nothing failing any more (the suite was fixed and re-run): the same request is approved.
    assert client_for(owner).post(url(agent, f"{row.pk}/approve/")).json()["status"] == "approved"


def test_refuse_needs_a_reason(agent, release, editor, owner):
    row = activation_request_create(agent=agent, release=release, actor=editor)
    body = assert_error(client_for(owner).post(url(agent, f"{row.pk}/refuse/"), {}, format="json"), 400)
    assert "reason" in body["errors"]
    body = assert_error(
        client_for(owner).post(url(agent, f"{row.pk}/refuse/"), {"reason": 5}, format="json"), 400
    )
    response = client_for(owner).post(
        url(agent, f"{row.pk}/refuse/"), {"reason": "Fails case 3."}, format="json"
    )
    assert response.json()["status"] == "refused" and response.json()["reason"] == "Fails case 3."
    assert_error(client_for(owner).post(url(agent, f"{row.pk}/approve/")), 409)


def test_cancel_is_the_requesters(agent, release, editor, owner):
    row = activation_request_create(agent=agent, release=release, actor=editor)
    body = assert_error(client_for(owner).post(url(agent, f"{row.pk}/cancel/"), {}, format="json"), 409)
    assert "refuses it instead" in body["message"]
    assert (
        client_for(editor).post(url(agent, f"{row.pk}/cancel/"), {}, format="json").json()["status"]
        == "cancelled"
    )


def test_bad_input(agent, release, editor):
    client = client_for(editor)
    # A release the agent lacks is an unknown object named in the body: 404 (schemathesis found the
    # schema-valid body refused with 400).
    body = assert_error(client.post(url(agent), {"release": 9}, format="json"), 404)
    assert "no release 9" in body["message"]
    assert_error(client.post(url(agent), {"release": "one"}, format="json"), 400)
    assert_error(client.post(url(agent), {}, format="json"), 400)
    assert_error(client.post(url(agent), {"release": 1, "extra": True}, format="json"), 400)
    assert_error(client.post(url(agent), "[1]", content_type="application/json"), 400)


def test_a_second_request_supersedes_the_first(agent, release, editor):
    client = client_for(editor)
    first = client.post(url(agent), {"release": 1}, format="json").json()
    agent.personas.update(system_prompt="Cite the article.")
    release_now(agent, activate=False)
    second = client.post(url(agent), {"release": 2}, format="json").json()
    rows = {row["id"]: row["status"] for row in results(client.get(url(agent)))}
    assert rows == {first["id"]: "superseded", second["id"]: "pending"}


def test_activate_endpoint_is_a_request_unless_one_person_activation(org, agent, release, editor, admin_user):
    """``POST /agents/{id}/activate/`` no longer bypasses approval: 202 with a pending request; with
    one-person activation an admin's call is approved at once (after a step-up)."""
    response = client_for(editor).post(f"/api/v1/agents/{agent.pk}/activate/", {"release": 1}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert Agent.objects.get(pk=agent.pk).status == "draft"

    org.one_person_activation = True
    org.save()
    # An editor is not an approver: still a request.
    assert client_for(editor).post(f"/api/v1/agents/{agent.pk}/activate/").status_code == 202
    device = TOTPDeviceFactory(user=admin_user)
    client = session(admin_user)
    body = assert_error(client.post(f"/api/v1/agents/{agent.pk}/activate/"), 403)
    assert body["code"] == "step_up_required"
    step_up(client, device)
    response = client.post(f"/api/v1/agents/{agent.pk}/activate/", {"release": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    approved = ActivationRequest.objects.get(status="approved")
    assert approved.requested_by == admin_user and approved.decided_by == admin_user
    assert approved.verdict["self_approved"] is True


def test_inbox_lists_pending_requests_of_the_organisation(
    org, editor, admin_user, django_assert_max_num_queries
):
    for n in range(4):
        agent = AgentFactory(organization=org, name=f"Agent {n}")
        PersonaFactory(agent=agent, is_active=True)
        activation_request_create(agent=agent, release=release_now(agent, activate=False), actor=editor)
    done = ActivationRequest.objects.first()
    done.status = "cancelled"
    done.save()
    client = client_for(admin_user)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/activation-requests/?status=pending")
    rows = results(response)
    assert len(rows) == 3 and {row["status"] for row in rows} == {"pending"}
    assert rows[0]["agent_name"].startswith("Agent") and len(rows[0]["release_hash"]) == 64
    assert len(results(client.get("/api/v1/activation-requests/"))) == 4
    assert_error(client.get("/api/v1/activation-requests/?status=maybe"), 400)
    assert_error(APIClient().get("/api/v1/activation-requests/"), 401)


def test_audit_events_carry_the_release_hash(agent, release, editor, owner):
    client = client_for(editor)
    pk = client.post(url(agent), {"release": 1}, format="json").json()["id"]
    client_for(owner).post(url(agent, f"{pk}/approve/"))
    for action in ("activation_request.create", "activation_request.approve", "agent.activate"):
        assert AuditEvent.objects.get(action=action).after["release_hash"] == release.content_hash


def test_organisation_setting_owner_only_with_step_up_and_audited(org, owner, admin_user):
    body = assert_error(
        client_for(admin_user).patch("/api/v1/organization/", {"one_person_activation": True}, format="json"),
        403,
    )
    assert "owner" in body["message"]
    device = TOTPDeviceFactory(user=owner)
    client = session(owner)
    # A rename needs no step-up; the four-eyes setting does.
    assert client.patch("/api/v1/organization/", {"name": "Demo Firm LLP"}, format="json").status_code == 200
    body = assert_error(
        client.patch("/api/v1/organization/", {"one_person_activation": True}, format="json"), 403
    )
    assert body["code"] == "step_up_required"
    step_up(client, device)
    assert_error(client.patch("/api/v1/organization/", {"one_person_activation": "yes"}, format="json"), 400)
    response = client.patch("/api/v1/organization/", {"one_person_activation": True}, format="json")
    assert response.status_code == 200 and response.json()["one_person_activation"] is True
    org.refresh_from_db()
    assert org.one_person_activation is True
    event = AuditEvent.objects.filter(action="organization.update").latest("id")
    assert event.before["one_person_activation"] is False and event.after["one_person_activation"] is True
    assert (
        client.patch("/api/v1/organization/", {"one_person_activation": False}, format="json").status_code
        == 200
    )
    org.refresh_from_db()
    assert org.one_person_activation is False
