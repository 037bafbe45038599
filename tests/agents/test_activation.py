"""Activation requests and gates (``agents.activation``): the services every door calls, the gate
registry, the model's constraints."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents import activation
from agents.activation import GateResult, register_gate, unregister_gate
from agents.models import ActivationRequest, Agent
from agents.services import agent_activate
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_verify_chain
from prisma_glow.exceptions import ConflictError
from tests.factories import AgentFactory, APIKeyFactory, PersonaFactory, release_now
from tests.support.models import assert_db_rejects

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True)
    return agent


@pytest.fixture
def release(agent):
    return release_now(agent, activate=False)


@pytest.fixture
def failing_cases():
    """A real gate: refuses release numbers listed in ``state["refuse"]``, naming two failing cases."""
    state = {"refuse": set(), "calls": []}

    def suite_gate(agent, release):
        state["calls"].append(release.number)
        if release.number in state["refuse"]:
            return GateResult(
                passed=False,
                message=f"Suite 'VAT basics' failed on release {release.number} (80 %, needs 90 %).",
                failures=["reverse charge (must pass)", "EU rates table"],
                evidence={"run": 7, "pass_rate": 0.8},
            )
        return GateResult(passed=True, evidence={"run": 8, "pass_rate": 1.0})

    register_gate(suite_gate, name="test-suite")
    yield state
    unregister_gate("test-suite")


def test_request_then_approval_by_another_admin_activates_the_release(
    org, agent, release, editor, admin_user
):
    """An editor requests, another admin approves: the release is live and each step is audited with
    the release hash."""
    row = activation.activation_request_create(agent=agent, release=release, actor=editor, notes=" Ready. ")
    assert row.status == "pending" and row.requester_label == editor.username and row.notes == "Ready."
    agent.refresh_from_db()
    assert agent.status == "draft" and agent.active_release is None

    row = activation.activation_request_approve(request=row, actor=admin_user)
    agent.refresh_from_db()
    assert row.status == "approved" and row.decided_by == admin_user and row.decided_at is not None
    assert agent.status == "active" and agent.active_release == release
    assert row.verdict == {"passed": True, "gates": {}, "failures": [], "self_approved": False}
    for action in ("activation_request.create", "activation_request.approve"):
        event = AuditEvent.objects.get(action=action)
        assert event.after["release"] == release.number
        assert event.after["release_hash"] == release.content_hash
    activated = AuditEvent.objects.get(action="agent.activate", object_id=str(agent.pk))
    assert activated.actor_user == admin_user
    assert activated.after["release_hash"] == release.content_hash
    assert activated.after["approval"] == {"request": row.pk, "gates": {}, "self_approved": False}
    assert audit_verify_chain(org) == []


def test_the_requester_cannot_approve_their_own_request(agent, release, admin_user):
    row = activation.activation_request_create(agent=agent, release=release, actor=admin_user)
    with pytest.raises(ConflictError) as exc:
        activation.activation_request_approve(request=row, actor=admin_user)
    assert "four eyes" in str(exc.value)
    row.refresh_from_db()
    assert row.status == "pending"
    assert Agent.objects.get(pk=agent.pk).status == "draft"


def test_one_person_activation_lets_the_requester_approve_and_says_so(org, agent, release, admin_user):
    org.one_person_activation = True
    org.save()
    row = activation.activation_request_create(agent=agent, release=release, actor=admin_user)
    row = activation.activation_request_approve(request=row, actor=admin_user)
    assert row.status == "approved" and row.verdict["self_approved"] is True
    assert AuditEvent.objects.get(action="activation_request.approve").after["self_approved"] is True


def test_an_api_key_can_request_but_never_approve(org, agent, release, admin_user):
    key = APIKeyFactory(organization=org, name="CI", scopes=["write"])
    row = activation.activation_request_create(agent=agent, release=release, actor=key)
    assert row.requested_by_key == key and row.requester_label.startswith("API key CI")
    with pytest.raises(ConflictError, match="never by an API key"):
        activation.activation_request_approve(request=row, actor=key)
    activation.activation_request_approve(request=row, actor=admin_user)
    assert Agent.objects.get(pk=agent.pk).active_release == release


def test_a_failing_gate_refuses_with_the_failing_cases_and_the_request_stays_pending(
    agent, release, editor, admin_user, failing_cases
):
    failing_cases["refuse"].add(release.number)
    row = activation.activation_request_create(agent=agent, release=release, actor=editor)
    with pytest.raises(activation.ActivationRefusedByGates) as exc:
        activation.activation_request_approve(request=row, actor=admin_user)
    errors = exc.value.message_dict
    assert "stays pending" in errors["release"][0]
    assert errors["gates"] == [
        "Suite 'VAT basics' failed on release 1 (80 %, needs 90 %). Failing: reverse charge (must pass); "
        "EU rates table."
    ]
    row.refresh_from_db()
    assert row.status == "pending"
    assert Agent.objects.get(pk=agent.pk).active_release is None
    assert not AuditEvent.objects.filter(action="agent.activate").exists()

    failing_cases["refuse"].clear()  # the suite was fixed and re-run
    row = activation.activation_request_approve(request=row, actor=admin_user)
    assert row.verdict["gates"] == {"test-suite": {"run": 8, "pass_rate": 1.0}}
    event = AuditEvent.objects.get(action="activation_request.approve")
    assert event.after["gates"] == {"test-suite": {"run": 8, "pass_rate": 1.0}}
    activated = AuditEvent.objects.get(action="agent.activate")
    assert activated.after["approval"]["gates"] == {"test-suite": {"run": 8, "pass_rate": 1.0}}


def test_a_gate_that_raises_fails_closed(agent, release, editor, admin_user):
    def broken(agent, release):
        raise RuntimeError("evaluation store unreachable")

    register_gate(broken, name="broken")
    try:
        failures = activation.gate_failures(agent, release)
        assert [f.gate for f in failures] == ["broken"]
        assert "could not run" in failures[0].message and "unreachable" in failures[0].message
        row = activation.activation_request_create(agent=agent, release=release, actor=editor)
        with pytest.raises(activation.ActivationRefusedByGates):
            activation.activation_request_approve(request=row, actor=admin_user)
    finally:
        unregister_gate(broken)
    assert "broken" not in activation.registered_gates()


def test_a_gate_with_nothing_to_say_is_left_out(agent, release):
    register_gate(lambda agent, release: None, name="no-suite")
    try:
        verdict = activation.run_gates(agent=agent, release=release)
        assert verdict.passed and verdict.evidence == {}
    finally:
        unregister_gate("no-suite")


def test_a_new_request_supersedes_the_pending_one(agent, release, editor, owner):
    first = activation.activation_request_create(agent=agent, release=release, actor=editor)
    agent.personas.update(system_prompt="Answer with the legal basis.")
    second_release = release_now(agent, activate=False)
    second = activation.activation_request_create(agent=agent, release=second_release, actor=editor)
    first.refresh_from_db()
    assert first.status == "superseded" and "release 2" in first.reason
    assert second.status == "pending"
    assert ActivationRequest.objects.filter(agent=agent, status="pending").count() == 1
    superseded = AuditEvent.objects.get(action="activation_request.supersede")
    assert superseded.after["superseded_by_release"] == 2 and superseded.after["release"] == 1
    with pytest.raises(ConflictError, match="already superseded"):
        activation.activation_request_approve(request=first, actor=owner)


def test_refusal_needs_a_reason_and_closes_the_request(agent, release, editor, admin_user):
    row = activation.activation_request_create(agent=agent, release=release, actor=editor)
    with pytest.raises(ValidationError) as exc:
        activation.activation_request_refuse(request=row, actor=admin_user, reason="  ")
    assert "reason" in exc.value.message_dict
    row = activation.activation_request_refuse(request=row, actor=admin_user, reason="Must-pass case fails.")
    assert row.status == "refused" and row.reason == "Must-pass case fails."
    assert (
        AuditEvent.objects.get(action="activation_request.refuse").after["reason"] == "Must-pass case fails."
    )
    with pytest.raises(ConflictError, match="already refused"):
        activation.activation_request_approve(request=row, actor=admin_user)


def test_only_the_requester_cancels(agent, release, editor, admin_user):
    row = activation.activation_request_create(agent=agent, release=release, actor=editor)
    with pytest.raises(ConflictError, match="Only the person or API key that requested"):
        activation.activation_request_cancel(request=row, actor=admin_user)
    row = activation.activation_request_cancel(request=row, actor=editor)
    assert row.status == "cancelled"
    assert AuditEvent.objects.filter(action="activation_request.cancel").count() == 1


def test_requesting_the_live_release_or_another_agents_is_refused(org, agent, release, editor):
    other = AgentFactory(organization=org)
    PersonaFactory(agent=other, is_active=True)
    with pytest.raises(ValidationError) as exc:
        activation.activation_request_create(agent=other, release=release, actor=editor)
    assert "another agent" in str(exc.value)
    agent_activate(agent=agent, actor=None, release=release)  # release 1 is live
    with pytest.raises(ConflictError, match="already active"):
        activation.activation_request_create(agent=agent, release=release, actor=editor)


def test_an_agent_without_a_release_has_nothing_to_request(agent, editor):
    with pytest.raises(ConflictError, match="no release yet"):
        activation.activation_request_create(agent=agent, actor=editor)


def test_rolling_back_is_the_same_flow(agent, release, editor, owner):
    """Activating an earlier release (a roll-back) is requested and approved like any other."""
    activation.activation_request_approve(
        request=activation.activation_request_create(agent=agent, release=release, actor=editor), actor=owner
    )
    agent.personas.update(system_prompt="Changed.")
    newer = release_now(agent, activate=False)
    activation.activation_request_approve(
        request=activation.activation_request_create(agent=agent, release=newer, actor=editor), actor=owner
    )
    assert Agent.objects.get(pk=agent.pk).active_release == newer
    activation.activation_request_approve(
        request=activation.activation_request_create(agent=agent, release=release, actor=editor), actor=owner
    )
    assert Agent.objects.get(pk=agent.pk).active_release == release


def test_the_database_keeps_one_pending_request_per_agent(org, agent, release, editor):
    activation.activation_request_create(agent=agent, release=release, actor=editor)
    assert_db_rejects(
        lambda: ActivationRequest.objects.create(
            organization=org, agent=agent, release=release, status="pending"
        )
    )


def test_the_database_refuses_an_unknown_status(org, agent, release):
    assert_db_rejects(
        lambda: ActivationRequest.objects.create(
            organization=org, agent=agent, release=release, status="maybe"
        )
    )
