"""ASVS 5.0 V8 (authorization) for evaluations: who may run suites and set the activation gate, and
another organisation's suites and runs."""

from __future__ import annotations

import pytest

from evaluations.models import Case, EvalRun, Requirement, Suite
from tests.conftest import client_for
from tests.factories import AgentFactory, APIKeyFactory, MembershipFactory, UserFactory
from tests.support.api import assert_error


@pytest.fixture
def suite(org):
    suite = Suite.objects.create(organization=org, agent=AgentFactory(organization=org), name="S")
    Case.objects.create(suite=suite, name="One", input="Hi?")
    return suite


def test_v8_2_1_only_admins_set_the_activation_requirement(org, suite, editor, admin_user):
    """ASVS 5.0 V8.2.1: the requirement that gates activation is set by an admin (or an admin-scope
    key), never by an editor, who could otherwise lift the gate on their own release."""
    body = {"agent": suite.agent_id, "suite": suite.pk}
    assert_error(client_for(editor).post("/api/v1/evaluation-requirements/", body, format="json"), 403)
    write_key = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    assert_error(
        client_for(key=write_key.plaintext).post("/api/v1/evaluation-requirements/", body, format="json"), 403
    )
    assert (
        client_for(admin_user).post("/api/v1/evaluation-requirements/", body, format="json").status_code
        == 201
    )
    requirement = Requirement.objects.get()
    assert_error(client_for(editor).delete(f"/api/v1/evaluation-requirements/{requirement.pk}/"), 403)
    assert Requirement.objects.exists()


def test_v8_2_1_running_a_suite_needs_the_execute_scope(org, suite):
    """ASVS 5.0 V8.2.1: a run executes the agent: a key without `execute` cannot start one."""
    key = APIKeyFactory(organization=org, scopes=["read", "write"])
    response = client_for(key=key.plaintext).post(
        "/api/v1/evaluation-runs/", {"suite": suite.pk}, format="json"
    )
    assert_error(response, 403)
    assert not EvalRun.objects.exists()


def test_v8_4_1_another_organisations_suite_is_a_404_and_stays_unchanged(other_org, suite):
    """ASVS 5.0 V8.4.1: another organisation's owner can neither read, change, delete nor run a suite."""
    stranger = UserFactory(username="stranger-owner")
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    client = client_for(stranger)
    url = f"/api/v1/evaluation-suites/{suite.pk}/"
    assert_error(client.get(url), 404)
    assert_error(client.patch(url, {"name": "Mine"}, format="json"), 404)
    assert_error(client.delete(url), 404)
    assert_error(client.post(f"{url}cases/", {"name": "x", "input": "y"}, format="json"), 404)
    assert_error(client.post("/api/v1/evaluation-runs/", {"suite": suite.pk}, format="json"), 404)
    suite.refresh_from_db()
    assert suite.name == "S" and suite.cases.count() == 1 and not EvalRun.objects.exists()
