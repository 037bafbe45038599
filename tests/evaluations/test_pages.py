"""The staff pages of evaluations: a suite's page (requirement, judge agreement, cases, case editor,
import, starting a run), a run's page (progress fragment polled while unfinished, results, marks), the
comparison of two runs, and "Save as test case" on an execution's page. Permissions: viewers read,
editors write, another organisation's rows are 404; query counts do not grow with the rows."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import Execution
from agents.runtime import execute
from evaluations import services
from evaluations.models import Case, CaseResult, EvalRun, Requirement
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def suite_url(suite):
    return f"/admin/evaluations/suite/{suite.pk}/change/"


def run_url(run):
    return f"/admin/evaluations/evalrun/{run.pk}/change/"


@pytest.fixture
def finished(suite, cases):
    return services.run_create(suite=suite, actor=None)


# --- The suite's page --------------------------------------------------------------------------------
def test_the_suite_page_shows_cases_requirement_and_an_uncalibrated_judge(
    viewer_admin_client, suite, cases, vat_agent, django_assert_max_num_queries
):
    Requirement.objects.create(
        organization=suite.organization, agent=vat_agent, suite=suite, threshold="0.75"
    )
    with django_assert_max_num_queries(16):
        page = viewer_admin_client.get(suite_url(suite))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Reverse charge" in html and "customer accounts for the VAT" in html
    assert "Gates the agent's activation" in html and "75 % of all cases" in html
    assert "Uncalibrated" in html
    assert "Add a case" not in html and "Start the run" not in html  # a viewer writes nothing


def test_a_threshold_with_a_fraction_is_shown_as_typed_on_the_suite_and_run_pages(
    viewer_admin_client, suite, cases, vat_agent
):
    """87.5 % is shown as 87.5 (as the threshold form and its message say it), never rounded to 88."""
    Requirement.objects.create(
        organization=suite.organization, agent=vat_agent, suite=suite, threshold="0.875"
    )
    run = services.run_create(suite=suite, actor=None)
    html = viewer_admin_client.get(suite_url(suite)).content.decode()
    assert "87.5 % of all cases" in html and "88 %" not in html
    html = viewer_admin_client.get(run_url(run)).content.decode()
    assert "87.5 % of cases" in html and "88 %" not in html


def test_the_suite_page_costs_the_same_queries_with_more_cases(staff_client, suite, cases):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        staff_client.get(suite_url(suite))
    for i in range(10):
        add_case(suite, f"More {i}", "What must every invoice show?", [{"kind": "not_blocked"}])
    services.run_create(suite=suite, actor=None)
    with CaptureQueriesContext(connection) as many:
        staff_client.get(suite_url(suite))
    assert len(many) == len(few)


def test_another_organisation_gets_404_everywhere(stranger_client, finished, suite):
    result = CaseResult.objects.filter(run=finished).first()
    for url in (
        suite_url(suite),
        run_url(finished),
        f"/admin/evaluations/evalrun/{finished.pk}/progress/",
        f"/admin/evaluations/evalrun/{finished.pk}/compare/?against={finished.pk}",
    ):
        assert stranger_client.get(url).status_code == 404, url
    for url in (
        f"/admin/evaluations/evalrun/results/{result.pk}/mark/",
        f"/admin/evaluations/suite/{suite.pk}/run/",
        f"/admin/evaluations/suite/{suite.pk}/cases/add/",
    ):
        assert stranger_client.post(url, {"passed": "pass"}).status_code == 404, url
    result.refresh_from_db()
    assert result.human_passed is None


def test_anonymous_is_sent_to_sign_in(client, finished):
    response = client.get(run_url(finished))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_editor_writes_a_case_with_validated_checks(staff_client, suite):
    url = f"/admin/evaluations/suite/{suite.pk}/cases/add/"
    bad = staff_client.post(
        url, {"name": "Bad", "input": "Hi?", "checks": '[{"kind": "regex", "pattern": "(a+)+$"}]'}
    )
    assert bad.status_code == 400 and "Check 1 (regex): The pattern takes too long" in bad.content.decode()
    not_json = staff_client.post(url, {"name": "Bad", "input": "Hi?", "checks": "[{kind"})
    assert not_json.status_code == 400 and "Not valid JSON" in not_json.content.decode()
    assert not Case.objects.exists()
    good = staff_client.post(
        url,
        {
            "name": "Rubric",
            "input": REVERSE_CHARGE_Q,
            "must_pass": "on",
            "as_of": "2025-01-31",
            "checks": '[{"kind": "rubric", "rubric": "Names the reverse charge"}]',
        },
    )
    assert good.status_code == 302
    case = Case.objects.get()
    assert case.must_pass and str(case.as_of) == "2025-01-31"
    assert case.checks == [{"kind": "rubric", "rubric": "Names the reverse charge"}]


def test_viewers_may_not_write_import_or_run(viewer_admin_client, suite, cases):
    assert (
        viewer_admin_client.post(f"/admin/evaluations/suite/{suite.pk}/cases/add/", {"name": "x"}).status_code
        == 403
    )
    assert viewer_admin_client.post(f"/admin/evaluations/suite/{suite.pk}/run/", {}).status_code == 403
    assert viewer_admin_client.post(f"/admin/evaluations/suite/{suite.pk}/import/", {}).status_code == 403
    assert not EvalRun.objects.exists()


def test_import_from_the_admin_is_all_or_nothing(staff_client, suite):
    url = f"/admin/evaluations/suite/{suite.pk}/import/"
    bad = SimpleUploadedFile("cases.csv", b"name,input\nOne,Hello?\nTwo,\n", content_type="text/csv")
    response = staff_client.post(url, {"file": bad})
    assert response.status_code == 400 and "Line 3" in response.content.decode()
    assert not Case.objects.exists()
    good = SimpleUploadedFile(
        "cases.jsonl",
        b'{"name": "One", "input": "Hello?"}\n{"name": "Two", "input": "VAT?", "checks": [{"kind": "not_blocked"}]}\n',
    )
    assert staff_client.post(url, {"file": good}).status_code == 302
    assert sorted(Case.objects.values_list("name", flat=True)) == ["One", "Two"]


def test_an_editor_starts_a_run_against_a_chosen_release(staff_client, suite, cases, vat_agent):
    release = vat_agent.releases.order_by("-number").first()
    response = staff_client.post(f"/admin/evaluations/suite/{suite.pk}/run/", {"release": release.pk})
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run_url(run)
    assert run.release == release and run.done == 4  # the immediate task backend ran it
    refused = staff_client.post(f"/admin/evaluations/suite/{suite.pk}/run/", {"release": 999999})
    assert refused.status_code == 400 and EvalRun.objects.count() == 1


# --- The run's page ----------------------------------------------------------------------------------
def test_a_queued_run_polls_and_a_finished_one_is_static(
    viewer_admin_client, suite, cases, django_assert_max_num_queries
):
    queued = EvalRun.objects.create(
        organization=suite.organization, suite=suite, release=suite.agent.releases.first(), total=4
    )
    page = viewer_admin_client.get(run_url(queued)).content.decode()
    assert 'hx-trigger="every 2s"' in page and "0 of 4 cases" in page
    fragment = viewer_admin_client.get(f"/admin/evaluations/evalrun/{queued.pk}/progress/", headers=HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and body.lstrip().startswith('<div id="run-live"')
    assert "<html" not in body and 'hx-trigger="every 2s"' in body
    services.run_execute(run_id=queued.pk)
    with django_assert_max_num_queries(14):
        done = viewer_admin_client.get(f"/admin/evaluations/evalrun/{queued.pk}/progress/", headers=HTMX)
    body = done.content.decode()
    assert "hx-trigger" not in body and "4 of 4 cases" in body
    assert "Pass rate" in body and "75 %" in body and "Latency p50 / p95" in body
    assert "canteen" in body  # the failing check's reason
    execution_ids = CaseResult.objects.filter(run=queued).values_list("execution_id", flat=True)
    assert all(f"/admin/agents/execution/{pk}/change/" in body for pk in execution_ids)


def test_verdicts_are_marked_with_icons_and_words(viewer_admin_client, finished):
    """Each check's verdict reads "passed" or "failed" after a check or cross icon (SVG: the ✓ / ✗
    they replace show as empty boxes without a font that has them)."""
    from bs4 import BeautifulSoup

    page = BeautifulSoup(viewer_admin_client.get(run_url(finished)).content.decode(), "html.parser")
    verdicts = page.select("#run-results .pg-verdicts li")
    passed = [li for li in verdicts if li.select_one("svg.pg-icon-check")]
    failed = [li for li in verdicts if li.select_one("svg.pg-icon-cross")]
    assert passed and failed and len(passed) + len(failed) == len(verdicts)
    assert all(" passed" in li.get_text() for li in passed) and all(
        " failed" in li.get_text() for li in failed
    )
    assert "✓" not in page.get_text() and "✗" not in page.get_text()


def test_an_editor_marks_a_case_and_a_viewer_may_not(staff_client, viewer_admin_client, finished):
    result = CaseResult.objects.filter(run=finished).order_by("id").first()
    url = f"/admin/evaluations/evalrun/results/{result.pk}/mark/"
    assert "Pass</button>" not in viewer_admin_client.get(run_url(finished)).content.decode()
    assert viewer_admin_client.post(url, {"passed": "fail"}).status_code == 403
    assert "Pass</button>" in staff_client.get(run_url(finished)).content.decode()
    response = staff_client.post(url, {"passed": "fail"})
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.human_passed is False
    staff_client.post(url, {"passed": "bogus"})
    result.refresh_from_db()
    assert result.human_passed is False
    assert staff_client.get(url).status_code == 405


def test_the_comparison_shows_better_regressed_and_unchanged(viewer_admin_client, suite, cases):
    first = services.run_create(suite=suite, actor=None)
    cases[3].checks = [{"kind": "not_blocked"}]  # "Impossible" now passes
    cases[3].save()
    cases[1].checks = [{"kind": "contains", "text": "canteen"}]  # "Cites the manual" now fails
    cases[1].save()
    second = services.run_create(suite=suite, actor=None)
    page = viewer_admin_client.get(run_url(second)).content.decode()
    assert f'<option value="{first.pk}">' in page
    html = viewer_admin_client.get(
        f"/admin/evaluations/evalrun/{second.pk}/compare/?against={first.pk}"
    ).content.decode()
    assert 'data-change="improved">1<' in html and 'data-change="regressed">1<' in html
    assert 'data-change="unchanged">2<' in html and ">better<" in html
    for against in ("abc", "²", "٣", "1" + "0" * 18):  # Unicode digits are not ids (int("²") raises)
        bad = viewer_admin_client.get(f"/admin/evaluations/evalrun/{second.pk}/compare/?against={against}")
        assert bad.status_code == 302 and bad["Location"] == run_url(second), against


# --- Save as test case -------------------------------------------------------------------------------
def test_save_as_case_from_the_execution_page(staff_client, viewer_admin_client, suite, vat_agent):
    execution = execute(vat_agent, REVERSE_CHARGE_Q, source="api")
    page = f"/admin/agents/execution/{execution.pk}/change/"
    html = staff_client.get(page).content.decode()
    assert "Save as test case" in html and f'<option value="{suite.pk}">VAT regression</option>' in html
    assert "Save as test case" not in viewer_admin_client.get(page).content.decode()
    url = f"/admin/evaluations/suite/save-as-case/{execution.pk}/"
    assert viewer_admin_client.post(url, {"suite": suite.pk}).status_code == 403
    response = staff_client.post(url, {"suite": suite.pk, "must_pass": "on"})
    assert response.status_code == 302 and response["Location"] == suite_url(suite)
    case = Case.objects.get()
    assert case.must_pass and case.input == REVERSE_CHARGE_Q and case.suite == suite
    for bad in ("x", "²", f"{suite.pk}²", "1" + "0" * 18):  # never a 500, nothing saved
        response = staff_client.post(url, {"suite": bad})
        assert response.status_code == 302 and response["Location"] == page, bad
    assert Case.objects.count() == 1
    assert Execution.objects.filter(pk=execution.pk).exists()
