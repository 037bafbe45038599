"""ASVS 5.0 V14.2.6 (minimum sensitive data): a case saved from a run, or typed with a client identifier,
never shows it where lists, names and logs are read — its generated name, the audit log, the case lists
of the API and the staff pages, a run's results and the activation gate's failures — nor to viewers and
API keys; an editor sees it on the case's own detail."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.runtime import execute
from evaluations import services
from evaluations.gate import failing_cases
from evaluations.models import Case, CaseResult
from prisma_glow.audit.models import AuditEvent
from tests.agents.runtime import conftest as runtime
from tests.conftest import client_for
from tests.factories import APIKeyFactory

vat_kb, make_agent, vat_agent = runtime.vat_kb, runtime.make_agent, runtime.vat_agent

IBAN = "DE89370400440532013000"


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def suite(vat_agent):
    return services.suite_create(
        organization=vat_agent.organization, actor=None, agent=vat_agent, name="VAT regression"
    )


@pytest.mark.django_db
def test_v14_2_6_a_case_saved_from_a_run_names_no_identifier_and_lists_mask_it(
    org, editor, editor_client, viewer_client, suite, vat_agent
):
    """ASVS 5.0 V14.2.6: the generated name, the audit entry, lists and non-editors see it masked."""
    execution = execute(
        vat_agent, f"Our IBAN is {IBAN}: who accounts for the VAT?", actor=editor, source="api"
    )
    response = editor_client.post(
        f"/api/v1/executions/{execution.pk}/save-as-case/", {"suite": suite.pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    case = Case.objects.get(pk=response.json()["id"])
    assert IBAN in case.input  # an editor saved it: the case runs with the real value
    assert IBAN not in case.name and "DE89" in case.name

    event = AuditEvent.objects.get(action="evaluation_case.create", object_id=str(case.pk))
    assert IBAN not in str(event.after) and IBAN not in str(event.object_repr)

    cases_url = f"/api/v1/evaluation-suites/{suite.pk}/cases/"
    for client in (editor_client, viewer_client):
        listed = client.get(cases_url).json()["results"]
        assert listed and IBAN not in str(listed)
    assert IBAN not in str(viewer_client.get(f"{cases_url}{case.pk}/").json())
    key = APIKeyFactory(organization=org, scopes=["read"])
    assert IBAN not in str(client_for(key=key.plaintext).get(f"{cases_url}{case.pk}/").json())
    assert IBAN in editor_client.get(f"{cases_url}{case.pk}/").json()["input"]


@pytest.mark.django_db
def test_v14_2_6_run_results_and_the_gate_mask_a_case_named_with_an_identifier(
    editor, editor_client, suite, vat_agent
):
    """ASVS 5.0 V14.2.6: a person typed the IBAN into a case's name and check; results and the gate's
    failures (which reach the activation's refusal and audit event) show it masked."""
    services.case_create(
        suite=suite,
        actor=editor,
        name=f"Refund to {IBAN}",
        input="Who accounts for the VAT on cross-border B2B services?",
        checks=[{"kind": "contains", "text": IBAN}],
    )
    run = services.run_create(suite=suite, release=vat_agent.active_release, actor=editor)
    run.refresh_from_db()
    result = CaseResult.objects.get(run=run)
    assert not result.passed and IBAN in result.case_name  # stored as typed
    listed = editor_client.get(f"/api/v1/evaluation-suites/{suite.pk}/cases/").json()["results"]
    assert listed and IBAN not in str(listed)
    body = editor_client.get(f"/api/v1/evaluation-runs/{run.pk}/").json()
    assert body["results"] and IBAN not in str(body["results"])
    assert all(IBAN not in str(failure) for failure in failing_cases(run))
    client = Client()
    client.force_login(editor)
    page = client.get(f"/admin/evaluations/evalrun/{run.pk}/change/")
    assert page.status_code == 200 and "DE89" in page.content.decode()
    assert IBAN not in page.content.decode()
    page = client.get(f"/admin/evaluations/suite/{suite.pk}/change/")
    assert page.status_code == 200 and IBAN not in page.content.decode()
