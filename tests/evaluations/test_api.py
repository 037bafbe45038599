"""The evaluations API: suites, cases (+ import), runs (+ compare), requirements, save-as-case —
rights per role, another organisation's objects as 404, bad input as the documented 400, query counts."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.runtime import execute
from evaluations import services
from evaluations.models import Case, EvalRun, Requirement, Suite
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case
from tests.factories import AgentFactory, APIKeyFactory, MembershipFactory, UserFactory

SUITES = "/api/v1/evaluation-suites/"
RUNS = "/api/v1/evaluation-runs/"
REQUIREMENTS = "/api/v1/evaluation-requirements/"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"status", "code", "message", "errors"}, body
    return body


# --- Rights ------------------------------------------------------------------------------------------
def test_anonymous_callers_are_refused(api_client, suite):
    for url in (SUITES, RUNS, REQUIREMENTS, f"{SUITES}{suite.pk}/cases/"):
        response = api_client.get(url)
        assert response.status_code in (401, 403) and error_of(response)["code"] == "not_authenticated"


def test_viewers_read_but_do_not_write_or_run(viewer_client, suite, cases):
    assert viewer_client.get(SUITES).json()["results"][0]["case_count"] == 4
    assert len(viewer_client.get(f"{SUITES}{suite.pk}/cases/").json()["results"]) == 4
    for method, url, body in [
        ("post", SUITES, {"agent": suite.agent_id, "name": "Mine"}),
        ("post", f"{SUITES}{suite.pk}/cases/", {"name": "x", "input": "y"}),
        ("patch", f"{SUITES}{suite.pk}/", {"name": "Renamed"}),
        ("post", RUNS, {"suite": suite.pk}),
    ]:
        response = getattr(viewer_client, method)(url, body, format="json")
        assert response.status_code == 403 and error_of(response)["code"] == "permission_denied"
    assert not EvalRun.objects.exists()


def test_editors_write_and_run_but_only_admins_set_the_requirement(
    editor_client, admin_client_api, suite, cases
):
    response = editor_client.post(SUITES, {"agent": suite.agent_id, "name": "Smoke"}, format="json")
    assert response.status_code == 201 and response.json()["case_count"] == 0
    assert editor_client.post(RUNS, {"suite": suite.pk}, format="json").status_code == 202
    body = {"agent": suite.agent_id, "suite": suite.pk, "threshold": "0.8"}
    assert editor_client.post(REQUIREMENTS, body, format="json").status_code == 403
    response = admin_client_api.post(REQUIREMENTS, body, format="json")
    assert response.status_code == 201 and response.json()["threshold"] == "0.800"
    assert AuditEvent.objects.filter(action="evaluation_requirement.create").exists()


def test_another_organisations_objects_are_not_found(other_org, suite, cases):
    services.run_create(suite=suite, actor=None)
    stranger = UserFactory(username="stranger")
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    client = client_for(stranger)
    run = EvalRun.objects.get()
    for url in (
        f"{SUITES}{suite.pk}/",
        f"{SUITES}{suite.pk}/cases/",
        f"{SUITES}{suite.pk}/cases/{cases[0].pk}/",
        f"{RUNS}{run.pk}/",
        f"{RUNS}{run.pk}/compare/?against={run.pk}",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get(SUITES).json()["results"] == [] and client.get(RUNS).json()["results"] == []
    # Naming another organisation's suite or agent in a body is a 404 (as an unknown id), not a way in.
    response = client.post(RUNS, {"suite": suite.pk}, format="json")
    assert response.status_code == 404 and "suite" in error_of(response)["errors"]
    other_agent = AgentFactory(organization=other_org)
    response = client.post(SUITES, {"agent": suite.agent_id, "name": "x"}, format="json")
    assert response.status_code == 404 and "agent" in error_of(response)["errors"]
    response = client.post(
        f"/api/v1/executions/{run.results.first().execution_id}/save-as-case/",
        {"suite": suite.pk},
        format="json",
    )
    assert response.status_code == 404
    assert other_agent.pk


# --- Suites and cases --------------------------------------------------------------------------------
def test_a_case_with_bad_checks_is_a_400_naming_each_check(editor_client, suite):
    body = {
        "name": "Bad",
        "input": "Hello?",
        "checks": [
            {"kind": "contains", "text": "ok"},
            {"kind": "regex", "pattern": "(a+)+$"},
            {"kind": "rubric"},
        ],
    }
    response = editor_client.post(f"{SUITES}{suite.pk}/cases/", body, format="json")
    assert response.status_code == 400
    errors = error_of(response)["errors"]["checks"]
    assert errors[0].startswith("Check 2 (regex): The pattern takes too long on some inputs")
    assert errors[1] == "Check 3 (rubric): 'rubric' must be a non-empty text."
    assert not Case.objects.exists()


def test_cases_are_written_validated_and_audited(editor_client, suite):
    url = f"{SUITES}{suite.pk}/cases/"
    body = {
        "name": "One",
        "input": REVERSE_CHARGE_Q,
        "must_pass": True,
        "checks": [{"kind": "cites_at_least", "count": 1}],
    }
    created = editor_client.post(url, body, format="json")
    assert created.status_code == 201 and created.json()["suite"] == suite.pk
    case_id = created.json()["id"]
    duplicate = editor_client.post(url, body, format="json")
    assert duplicate.status_code == 409 and "already has a case" in error_of(duplicate)["message"]
    changed = editor_client.patch(
        f"{url}{case_id}/", {"checks": [{"kind": "latency_under", "ms": 9000}]}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["checks"] == [{"kind": "latency_under", "ms": 9000}]
    assert editor_client.patch(f"{url}{case_id}/", {"must_pass": "yes"}, format="json").status_code == 400
    assert editor_client.delete(f"{url}{case_id}/").status_code == 204
    actions = list(
        AuditEvent.objects.filter(action__startswith="evaluation_case.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["evaluation_case.create", "evaluation_case.delete", "evaluation_case.update"]


def test_a_suite_with_runs_or_a_requirement_cannot_be_deleted(editor_client, suite, cases):
    services.run_create(suite=suite, actor=None)
    response = editor_client.delete(f"{SUITES}{suite.pk}/")
    assert response.status_code == 409 and "has runs" in error_of(response)["message"]
    empty = services.suite_create(
        organization=suite.organization, actor=None, agent=suite.agent, name="Empty"
    )
    assert editor_client.delete(f"{SUITES}{empty.pk}/").status_code == 204


# --- Import ------------------------------------------------------------------------------------------
def upload(client, suite, name: str, text: str):
    file = SimpleUploadedFile(name, text.encode(), content_type="text/plain")
    return client.post(f"{SUITES}{suite.pk}/cases/import/", {"file": file}, format="multipart")


def test_cases_are_imported_from_csv(editor_client, suite):
    csv_text = (
        "name,input,must_pass,as_of,checks\n"
        'Reverse charge,Who pays the VAT?,yes,2025-01-31,"[{""kind"": ""cites_at_least"", ""count"": 1}]"\n'
        "Plain,What is an invoice?,,,\n"
    )
    response = upload(editor_client, suite, "cases.csv", csv_text)
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    first = Case.objects.get(name="Reverse charge")
    assert (
        first.must_pass
        and str(first.as_of) == "2025-01-31"
        and first.checks == [{"kind": "cites_at_least", "count": 1}]
    )
    assert Case.objects.get(name="Plain").checks == [] and not Case.objects.get(name="Plain").must_pass
    event = AuditEvent.objects.get(action="evaluation_case.import")
    assert event.after == {"cases": ["Reverse charge", "Plain"], "count": 2}


def test_cases_are_imported_from_jsonl(editor_client, suite):
    lines = [
        {"name": "A", "input": "Who pays the VAT?", "must_pass": True, "checks": [{"kind": "not_blocked"}]},
        {"name": "B", "input": "Hello", "expected_output": "Hi"},
    ]
    response = upload(editor_client, suite, "cases.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert response.status_code == 201 and [c["name"] for c in response.json()["cases"]] == ["A", "B"]


def test_a_malformed_file_is_a_400_listing_every_bad_line_and_imports_nothing(editor_client, suite):
    add_case(suite, "Taken", "Hello?")
    lines = [
        json.dumps({"name": "Good", "input": "Fine?"}),
        "{not json",
        json.dumps({"name": "No input"}),
        json.dumps({"name": "Bad check", "input": "x", "checks": [{"kind": "contains"}]}),
        json.dumps(["a list"]),
        json.dumps({"name": "Taken", "input": "again"}),
        json.dumps({"name": "Odd", "input": "x", "colour": "red", "as_of": "31/01/2025"}),
        json.dumps({"name": "Good", "input": "twice"}),
    ]
    response = upload(editor_client, suite, "cases.jsonl", "\n".join(lines))
    assert response.status_code == 400
    errors = error_of(response)["errors"]["file"]
    assert errors == [
        "Line 2: not valid JSON (Expecting property name enclosed in double quotes).",
        "Line 3: 'input' is missing or empty.",
        "Line 5: must be a JSON object with 'name' and 'input'.",
        "Line 7: unknown column(s) colour; the columns are name, input, as_of, must_pass, expected_output, checks.",
        "Line 7: 'as_of' must be a date as YYYY-MM-DD, not \"31/01/2025\".",
    ]
    # Lines that parse are then checked against the suite: checks, duplicate names.
    lines = [lines[0], lines[3], lines[5], lines[7]]
    response = upload(editor_client, suite, "cases.jsonl", "\n".join(lines))
    assert error_of(response)["errors"]["file"] == [
        "Line 2: checks: Check 1 (contains): 'text' must be a non-empty text.",
        "Line 3: This suite already has a case with this name.",
        "Line 4: the suite already has a case named 'Good'.",
    ]
    assert list(Case.objects.values_list("name", flat=True)) == ["Taken"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cases.txt", "name,input\nA,B\n", "Upload a .csv file (with a header line) or a .jsonl file"),
        (
            "cases.csv",
            "question,answer\nA,B\n",
            "Line 1: the header must name at least the columns 'name' and 'input'.",
        ),
        ("cases.csv", "name,input\nA,B,C\n", "Line 2: more cells than the header has columns."),
        (
            "cases.csv",
            "name,input,must_pass\nA,B,perhaps\n",
            "Line 2: 'must_pass' must be true or false, not \"perhaps\".",
        ),
        ("cases.jsonl", "", "The submitted file is empty."),
        ("cases.jsonl", "\n\n", "The file holds no case."),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(editor_client, suite, name, content, message):
    response = upload(editor_client, suite, name, content)
    assert response.status_code == 400 and message in error_of(response)["errors"]["file"][0]


def test_an_import_without_a_file_is_a_400(editor_client, suite):
    response = editor_client.post(f"{SUITES}{suite.pk}/cases/import/", {}, format="multipart")
    assert response.status_code == 400 and "file" in error_of(response)["errors"]


# --- Save as test case -------------------------------------------------------------------------------
IBAN = "DE89370400440532013000"


def test_save_as_case_keeps_the_input_as_the_requester_may_see_it(
    org, editor, editor_client, suite, vat_agent
):
    """An editor sees every identifier and saves the input as typed; an API key that did not ask for
    the run sees it masked, and the case keeps it masked."""
    execution = execute(
        vat_agent, f"Who accounts for the VAT? Our IBAN is {IBAN}.", actor=editor, source="api"
    )
    url = f"/api/v1/executions/{execution.pk}/save-as-case/"
    response = editor_client.post(url, {"suite": suite.pk, "must_pass": True}, format="json")
    assert response.status_code == 201, response.json()
    case = Case.objects.get(pk=response.json()["id"])
    assert IBAN in case.input and case.must_pass and case.as_of == execution.as_of
    assert case.expected_output == execution.output
    assert case.checks[0] == {"kind": "not_blocked"}
    assert case.checks[1:] == (
        [{"kind": "cites_at_least", "count": len(execution.citations)}] if execution.citations else []
    )
    assert case.name.startswith(f"From execution {execution.pk}: Who accounts")

    key = APIKeyFactory(organization=org, scopes=["read", "write"])
    response = client_for(key=key.plaintext).post(url, {"suite": suite.pk, "name": "Masked"}, format="json")
    assert response.status_code == 201, response.json()
    masked = Case.objects.get(name="Masked")
    assert IBAN not in masked.input and "DE89" in masked.input and "3000" in masked.input


def test_save_as_case_refuses_a_suite_of_another_agent(editor_client, suite, vat_agent, make_agent, editor):
    other = make_agent(name="Other agent")
    execution = execute(other, REVERSE_CHARGE_Q, actor=editor, source="api")
    response = editor_client.post(
        f"/api/v1/executions/{execution.pk}/save-as-case/", {"suite": suite.pk}, format="json"
    )
    assert response.status_code == 400
    assert error_of(response)["errors"]["suite"] == ["This suite is for another agent than the execution's."]
    response = editor_client.post(
        "/api/v1/executions/999999/save-as-case/", {"suite": suite.pk}, format="json"
    )
    assert response.status_code == 404


def test_viewers_cannot_save_as_case(viewer_client, suite, vat_agent, editor):
    execution = execute(vat_agent, REVERSE_CHARGE_Q, actor=editor, source="api")
    response = viewer_client.post(
        f"/api/v1/executions/{execution.pk}/save-as-case/", {"suite": suite.pk}, format="json"
    )
    assert response.status_code == 403


# --- Runs --------------------------------------------------------------------------------------------
def test_a_run_is_created_with_202_and_shows_its_results(editor_client, suite, cases, vat_agent):
    response = editor_client.post(RUNS, {"suite": suite.pk, "release": 1}, format="json")
    assert response.status_code == 202
    run_id = response.json()["id"]
    detail = editor_client.get(f"{RUNS}{run_id}/").json()
    assert detail["release"] == 1 and detail["release_hash"] == vat_agent.active_release.content_hash
    assert detail["progress"] == {"done": 4, "total": 4} and detail["status"] == "failed"
    assert detail["pass_rate"] == "0.750" and detail["threshold"] == "0.900"
    impossible = detail["results"][3]
    assert impossible["case_name"] == "Impossible" and impossible["passed"] is False
    assert impossible["verdicts"][0]["reason"] == "The answer does not contain “canteen”."
    execution = editor_client.get(f"/api/v1/executions/{impossible['execution']}/").json()
    assert execution["source"] == "eval" and execution["release"] == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "suite"),
        ({"suite": "one"}, 400, "suite"),
        ({"suite": 999999}, 404, "suite"),
        ({"suite": None, "release": 1}, 400, "suite"),
        ({"release": 0}, 400, "release"),
    ],
)
def test_bad_run_requests_are_400s(editor_client, suite, cases, body, status, field):
    response = editor_client.post(RUNS, body, format="json")
    assert response.status_code == status and field in error_of(response)["errors"]


def test_an_unknown_release_is_a_404(editor_client, suite, cases):
    """The body names a release the agent lacks: 404 like any unknown object (found by schemathesis)."""
    response = editor_client.post(RUNS, {"suite": suite.pk, "release": 7}, format="json")
    assert response.status_code == 404
    assert error_of(response)["errors"]["release"] == ["This agent has no release 7."]


def test_compare_needs_a_run_of_the_organisation(editor_client, suite, cases):
    first = services.run_create(suite=suite, actor=None)
    second = services.run_create(suite=suite, actor=None)
    body = editor_client.get(f"{RUNS}{second.pk}/compare/?against={first.pk}").json()
    assert body["summary"] == {"improved": 0, "regressed": 0, "unchanged": 4, "added": 0, "removed": 0}
    for query in ("", "?against=abc", "?against=²", "?against=1" + "0" * 18, "?against=99999"):
        response = editor_client.get(f"{RUNS}{second.pk}/compare/{query}")
        assert response.status_code == 400 and "against" in error_of(response)["errors"]


def test_runs_are_filtered_by_suite_agent_and_status(editor_client, suite, cases):
    services.run_create(suite=suite, actor=None)
    assert len(editor_client.get(f"{RUNS}?suite={suite.pk}&status=failed").json()["results"]) == 1
    assert editor_client.get(f"{RUNS}?agent={suite.agent_id}&status=passed").json()["results"] == []
    assert editor_client.get(f"{RUNS}?status=bogus").status_code == 400


# --- Requirements ------------------------------------------------------------------------------------
def test_a_requirement_names_a_suite_of_its_agent_and_one_per_agent(admin_client_api, suite, make_agent):
    other = make_agent(name="Other agent")
    response = admin_client_api.post(REQUIREMENTS, {"agent": other.pk, "suite": suite.pk}, format="json")
    assert response.status_code == 400
    assert error_of(response)["errors"]["suite"] == ["The required suite must be one of this agent's suites."]
    response = admin_client_api.post(
        REQUIREMENTS, {"agent": suite.agent_id, "suite": suite.pk, "threshold": "1.5"}, format="json"
    )
    assert response.status_code == 400 and "threshold" in error_of(response)["errors"]
    assert (
        admin_client_api.post(
            REQUIREMENTS, {"agent": suite.agent_id, "suite": suite.pk}, format="json"
        ).status_code
        == 201
    )
    again = admin_client_api.post(REQUIREMENTS, {"agent": suite.agent_id, "suite": suite.pk}, format="json")
    assert again.status_code == 409
    requirement = Requirement.objects.get()
    assert str(requirement.threshold) == "0.900"
    response = admin_client_api.patch(
        f"{REQUIREMENTS}{requirement.pk}/", {"threshold": "0.75"}, format="json"
    )
    assert response.status_code == 200 and response.json()["threshold"] == "0.750"
    assert admin_client_api.delete(f"{SUITES}{suite.pk}/").status_code == 409


# --- Query counts ------------------------------------------------------------------------------------
def test_the_lists_cost_the_same_queries_whatever_their_length(
    editor_client, suite, cases, vat_agent, django_assert_max_num_queries
):
    for n in range(3):
        extra = Suite.objects.create(organization=suite.organization, agent=vat_agent, name=f"Suite {n}")
        add_case(extra, "One", REVERSE_CHARGE_Q)
        services.run_create(suite=extra, actor=None)
    services.run_create(suite=suite, actor=None)
    Requirement.objects.create(organization=suite.organization, agent=vat_agent, suite=suite)
    # Authentication and membership (3), the page's count and rows (2), and nothing per row.
    for url, rows in ((SUITES, 4), (RUNS, 4), (REQUIREMENTS, 1), (f"{SUITES}{suite.pk}/cases/", 4)):
        with django_assert_max_num_queries(6):
            body = editor_client.get(url).json()
        assert len(body["results"]) == rows, url
    run = EvalRun.objects.filter(suite=suite).get()
    with django_assert_max_num_queries(6):
        assert len(editor_client.get(f"{RUNS}{run.pk}/").json()["results"]) == 4


@pytest.mark.parametrize("checks", [None, "contains", {"kind": "contains"}, ["contains"]])
def test_checks_are_a_list_of_objects_as_the_schema_says(editor_client, suite, checks):
    """``checks`` is declared a list of objects; anything else (null included, which the schema used
    to allow) is the 400 the schema predicts (found by schemathesis)."""
    response = editor_client.post(
        f"{SUITES}{suite.pk}/cases/", {"name": "Bad", "input": "Hello?", "checks": checks}, format="json"
    )
    assert response.status_code == 400 and "checks" in error_of(response)["errors"]
    schema = editor_client.get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    assert schema["CaseRequest"]["properties"]["checks"]["type"] == "array"
    assert schema["CaseRequest"]["properties"]["checks"]["items"]["type"] == "object"
    assert not Case.objects.exists()
