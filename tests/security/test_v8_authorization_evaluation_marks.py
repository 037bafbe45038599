"""ASVS 5.0 V8 (authorization) and V16 (logging) for people's marks on evaluation results: who may
mark, another organisation's results, and the audit of each mark."""

from __future__ import annotations

import pytest

from evaluations.models import Case, CaseResult, EvalRun, Suite
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import AgentFactory, APIKeyFactory, MembershipFactory, UserFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def result(org):
    from agents.services import release_create
    from tests.factories import PersonaFactory

    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    release = release_create(agent=agent, actor=None)
    suite = Suite.objects.create(organization=org, agent=agent, name="S")
    case = Case.objects.create(suite=suite, name="One", input="Hi?")
    run = EvalRun.objects.create(
        organization=org, suite=suite, release=release, total=1, done=1, status="passed"
    )
    return CaseResult.objects.create(run=run, case=case, case_name="One", passed=True)


def url(result):
    return f"/api/v1/evaluation-case-results/{result.pk}/mark/"


def test_v8_2_1_marking_needs_an_editor_or_a_write_key(org, result, viewer):
    """ASVS 5.0 V8.2.1: a viewer or a read-only key may not mark a case (the marks calibrate the
    judge, so they are a write); a write key may."""
    assert_error(client_for(viewer).post(url(result), {"passed": False}, format="json"), 403)
    read_key = APIKeyFactory(organization=org, scopes=["read"])
    assert_error(client_for(key=read_key.plaintext).post(url(result), {"passed": False}, format="json"), 403)
    assert (
        login(viewer)
        .post(f"/admin/evaluations/evalrun/results/{result.pk}/mark/", {"passed": "fail"})
        .status_code
        == 403
    )
    result.refresh_from_db()
    assert result.human_passed is None
    write_key = APIKeyFactory(organization=org, scopes=["read", "write"])
    assert (
        client_for(key=write_key.plaintext).post(url(result), {"passed": False}, format="json").status_code
        == 200
    )


def test_v8_4_1_another_organisations_result_is_a_404_and_stays_unmarked(result, other_org):
    """ASVS 5.0 V8.4.1: an owner of another organisation cannot mark (or learn of) this organisation's
    results, through the API or the staff pages."""
    stranger = UserFactory(username="stranger", is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert_error(client_for(stranger).post(url(result), {"passed": False}, format="json"), 404)
    assert (
        login(stranger)
        .post(f"/admin/evaluations/evalrun/results/{result.pk}/mark/", {"passed": "fail"})
        .status_code
        == 404
    )
    result.refresh_from_db()
    assert result.human_passed is None


def test_v16_2_1_each_mark_is_audited_with_who_and_what(result, editor):
    """ASVS 5.0 V16.2.1: a mark (and its withdrawal) is an audit event naming the person, the result,
    the mark before and after."""
    client = client_for(editor)
    client.post(url(result), {"passed": False}, format="json")
    client.post(url(result), {"passed": None}, format="json")
    events = list(AuditEvent.objects.filter(action="evaluation_result.mark").order_by("id"))
    assert [e.after["human_passed"] for e in events] == [False, None]
    assert events[1].before["human_passed"] is False
    assert all(e.actor_user_id == editor.pk for e in events)
