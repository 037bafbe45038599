"""ASVS 5.0 V8 (authorization) for issue 17's activation: segregation of duties (four eyes) between
who requests a release's activation and who approves it, keys kept out of the decision, a fresh second
factor, and the record of it all."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents.activation import GateResult, activation_request_create, register_gate, unregister_gate
from agents.models import ActivationRequest, Agent
from prisma_glow import policy
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_verify_chain
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
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="Audit assistant")
    PersonaFactory(agent=agent, is_active=True)
    return agent


@pytest.fixture
def release(agent):
    return release_now(agent, activate=False)


def approve(agent, row) -> str:
    return f"/api/v1/agents/{agent.pk}/activation-requests/{row.pk}/approve/"


def test_v8_2_1_keys_may_request_but_never_decide(org, agent, release):
    """ASVS 5.0 V8.2.1: function-level access — a `write` key may ask for an activation; no key, whatever
    its scopes, approves or refuses one (403 session_required), and nothing goes live."""
    writer = APIKeyFactory(organization=org, scopes=["write"])
    reader = APIKeyFactory(organization=org, scopes=["read"])
    url = f"/api/v1/agents/{agent.pk}/activation-requests/"
    assert_error(client_for(key=reader.plaintext).post(url, {"release": 1}, format="json"), 403)
    assert client_for(key=writer.plaintext).post(url, {"release": 1}, format="json").status_code == 201
    row = ActivationRequest.objects.get()
    every = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    for path, body in ((approve(agent, row), None), (url + f"{row.pk}/refuse/", {"reason": "no"})):
        assert assert_error(client_for(key=every.plaintext).post(path, body, format="json"), 403)["code"] == (
            policy.SESSION_REQUIRED
        )
    assert Agent.objects.get(pk=agent.pk).status == "draft"


def test_v8_2_1_editors_request_admins_decide(agent, release, viewer, editor, admin_user):
    """ASVS 5.0 V8.2.1: a viewer cannot request; an editor cannot approve or refuse."""
    url = f"/api/v1/agents/{agent.pk}/activation-requests/"
    assert_error(client_for(viewer).post(url, {"release": 1}, format="json"), 403)
    row = activation_request_create(agent=agent, release=release, actor=admin_user)
    assert_error(client_for(editor).post(approve(agent, row)), 403)
    assert_error(client_for(editor).post(url + f"{row.pk}/refuse/", {"reason": "x"}, format="json"), 403)
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"


def test_v8_2_2_another_organisations_request_is_not_found(other_org, agent, release, editor):
    """ASVS 5.0 V8.2.2: data-specific access — an owner of another firm reaches none of this firm's
    requests (404 through the API and the admin)."""
    row = activation_request_create(agent=agent, release=release, actor=editor)
    outsider = UserFactory(username="other-owner")
    MembershipFactory(user=outsider, organization=other_org, role="owner")
    assert_error(client_for(outsider).post(approve(agent, row)), 404)
    assert_error(client_for(outsider).get(f"/api/v1/activation-requests/{row.pk}/"), 404)
    web = login(outsider)
    assert web.post(f"/admin/agents/agent/activation-requests/{row.pk}/approve/").status_code == 404
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"


def test_v8_1_1_the_requester_never_approves_without_one_person_activation(org, agent, release, owner):
    """ASVS 5.0 V8.1.1 (documented rules enforced): the person who asked cannot approve — not through
    the API, not through the admin — until an owner allows one-person activation."""
    row = activation_request_create(agent=agent, release=release, actor=owner)
    body = assert_error(client_for(owner).post(approve(agent, row)), 409)
    assert "four eyes" in body["message"]
    login(owner).post(f"/admin/agents/agent/activation-requests/{row.pk}/approve/")
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"
    org.one_person_activation = True
    org.save()
    assert client_for(owner).post(approve(agent, row)).json()["verdict"]["self_approved"] is True


def test_v8_1_1_asking_through_ones_own_key_is_still_asking(org, agent, release, owner, admin_user):
    """ASVS 5.0 V8.1.1 (segregation of duties): an admin who requests an activation through an API key
    they created cannot approve it (409 four eyes, API and admin); another admin can; with one-person
    activation on, the creator may, and the decision is recorded as self-approved."""
    key = APIKeyFactory(organization=org, scopes=["write"], created_by=owner)
    url = f"/api/v1/agents/{agent.pk}/activation-requests/"
    assert client_for(key=key.plaintext).post(url, {"release": 1}, format="json").status_code == 201
    row = ActivationRequest.objects.get()
    body = assert_error(client_for(owner).post(approve(agent, row)), 409)
    assert "four eyes" in body["message"]
    login(owner).post(f"/admin/agents/agent/activation-requests/{row.pk}/approve/")
    assert ActivationRequest.objects.get(pk=row.pk).status == "pending"
    assert Agent.objects.get(pk=agent.pk).active_release is None
    org.one_person_activation = True
    org.save()
    assert client_for(owner).post(approve(agent, row)).json()["verdict"]["self_approved"] is True


def test_v8_1_1_another_admin_approves_a_key_request_not_self_approved(
    org, agent, release, owner, admin_user
):
    """ASVS 5.0 V8.1.1: a request through a key someone else created is not the approver's own: approved
    without one-person activation, and recorded as not self-approved."""
    key = APIKeyFactory(organization=org, scopes=["write"], created_by=admin_user)
    url = f"/api/v1/agents/{agent.pk}/activation-requests/"
    assert client_for(key=key.plaintext).post(url, {"release": 1}, format="json").status_code == 201
    row = ActivationRequest.objects.get()
    assert client_for(owner).post(approve(agent, row)).json()["verdict"]["self_approved"] is False
    assert Agent.objects.get(pk=agent.pk).active_release_id == release.pk


def test_v2_3_a_release_the_gates_refuse_is_never_activated(agent, release, editor, owner):
    """ASVS 5.0 V2.3.x business logic in order: approval cannot skip the gates; a gate that cannot run
    refuses too (fail closed)."""

    def unreachable(agent, release):
        raise ConnectionError("evaluation results unavailable")

    register_gate(unreachable, name="unreachable-evaluations")
    try:
        row = activation_request_create(agent=agent, release=release, actor=editor)
        body = assert_error(client_for(owner).post(approve(agent, row)), 409)
    finally:
        unregister_gate("unreachable-evaluations")
    assert "could not run" in body["errors"]["gates"][0]
    assert Agent.objects.get(pk=agent.pk).active_release is None


def test_v7_5_3_approving_and_one_person_setting_need_a_fresh_factor(org, agent, release, editor, owner):
    """ASVS 5.0 V7.5.3: approving an activation and turning one-person activation on need a second
    factor checked in this session within the step-up window."""
    device = TOTPDeviceFactory(user=owner)
    client = APIClient()
    client.force_login(owner)
    row = activation_request_create(agent=agent, release=release, actor=editor)
    assert assert_error(client.post(approve(agent, row)), 403)["code"] == policy.STEP_UP_REQUIRED
    patch = client.patch("/api/v1/organization/", {"one_person_activation": True}, format="json")
    assert assert_error(patch, 403)["code"] == policy.STEP_UP_REQUIRED
    assert client.post("/api/v1/auth/step-up/", {"code": totp_code(device)}, format="json").status_code == 200
    assert client.post(approve(agent, row)).status_code == 200
    assert (
        client.patch("/api/v1/organization/", {"one_person_activation": True}, format="json").status_code
        == 200
    )


def test_v16_2_1_every_step_is_in_the_audit_chain_with_the_release_hash(org, agent, release, editor, owner):
    """ASVS 5.0 V16.2.1: request, approval and activation are logged with who, the release hash and the
    gates' evidence, in the organisation's verified hash chain."""
    register_gate(lambda a, r: GateResult(passed=True, evidence={"run": 41, "pass_rate": 0.95}), name="suite")
    try:
        row = activation_request_create(agent=agent, release=release, actor=editor)
        client_for(owner).post(approve(agent, row))
    finally:
        unregister_gate("suite")
    created = AuditEvent.objects.get(action="activation_request.create")
    approved = AuditEvent.objects.get(action="activation_request.approve")
    activated = AuditEvent.objects.get(action="agent.activate")
    assert created.actor_user == editor and approved.actor_user == owner and activated.actor_user == owner
    for event in (created, approved, activated):
        assert event.after["release_hash"] == release.content_hash
    assert approved.after["gates"] == {"suite": {"run": 41, "pass_rate": 0.95}}
    assert activated.after["approval"]["gates"] == {"suite": {"run": 41, "pass_rate": 0.95}}
    assert audit_verify_chain(org) == []
