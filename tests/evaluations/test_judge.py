"""Rubric checks graded by a judge model (a real local OpenAI-compatible server), "not judged" without
one, people's marks (service and API), the judge's agreement with them, and the rule that a rubric with
``min_agreement`` counts only once the judge reaches it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from evaluations import services
from evaluations.judge import parse_verdict
from evaluations.models import CaseResult
from evaluations.selectors import judge_agreement
from prisma_glow.audit.models import AuditEvent
from tests.agents.runtime.test_openai_provider import completion
from tests.conftest import client_for
from tests.evaluations.conftest import REVERSE_CHARGE_Q, add_case
from tests.factories import MembershipFactory, ModelProviderFactory, UserFactory
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

RUBRIC = {"kind": "rubric", "rubric": "Says who accounts for the VAT and names the reverse charge."}


def verdict(passed: bool, reasoning="Names the customer as accountable."):
    return completion(json.dumps({"verdict": "pass" if passed else "fail", "reasoning": reasoning}))


@pytest.fixture
def judge(httpserver, settings, suite):
    """The suite's judge: a remote provider on a local server (allowed on its port)."""
    settings.PROVIDER_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    provider = ModelProviderFactory(
        organization=suite.organization,
        name="Judge",
        kind="openai_compatible",
        base_url=httpserver.url_for("/v1"),
        default_model="judge-test",
        timeout_seconds=5,
        max_retries=0,
    )
    services.suite_update(suite=suite, actor=None, judge_provider=provider)
    suite.refresh_from_db()
    return httpserver


def run(suite):
    return services.run_create(suite=suite, actor=None)


def only_result(run):
    return CaseResult.objects.get(run=run)


def test_the_judge_gets_the_rubric_question_and_answer_and_its_verdict_is_recorded(judge, suite):
    judge.expect_request("/v1/chat/completions").respond_with_json(verdict(True))
    add_case(suite, "Rubric", REVERSE_CHARGE_Q, [RUBRIC])
    result = only_result(run(suite))
    assert result.passed
    [v] = result.verdicts
    assert v["judged"] and v["counts"] and v["passed"] is True
    assert v["reasoning"] == "Names the customer as accountable."
    assert "judge" in v["reason"] and "passed" in v["reason"]
    sent = json.loads(judge.log[0][0].get_data())
    assert sent["model"] == "judge-test" and sent["temperature"] == 0
    text = sent["messages"][1]["content"]
    assert REVERSE_CHARGE_Q in text and RUBRIC["rubric"] in text
    assert result.execution.output[:40] in text  # the agent's answer


def test_a_failing_verdict_fails_the_case(judge, suite):
    judge.expect_request("/v1/chat/completions").respond_with_json(verdict(False, "No reverse charge."))
    add_case(suite, "Rubric", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}, RUBRIC])
    result = only_result(run(suite))
    assert not result.passed
    assert result.verdicts[1]["passed"] is False and result.verdicts[1]["reasoning"] == "No reverse charge."


def test_without_a_remote_judge_the_rubric_is_not_judged_and_does_not_count(suite):
    add_case(suite, "Rubric", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}, RUBRIC])
    result = only_result(run(suite))
    rubric = result.verdicts[1]
    assert rubric["passed"] is None and rubric["judged"] is False and rubric["counts"] is False
    assert rubric["reason"].startswith("Not judged: no judge model.")
    assert result.passed  # decided by not_blocked alone


def test_an_offline_default_provider_cannot_judge(suite):
    ModelProviderFactory(organization=suite.organization, name="Local", kind="offline", is_default=True)
    add_case(suite, "Rubric", REVERSE_CHARGE_Q, [RUBRIC])
    [v] = only_result(run(suite)).verdicts
    assert v["judged"] is False and "offline engine, which cannot grade" in v["reason"]


def test_a_reply_without_a_verdict_or_an_unreachable_judge_is_not_judged(judge, suite):
    judge.expect_request("/v1/chat/completions").respond_with_json(completion("I think it is fine."))
    add_case(suite, "Rubric", REVERSE_CHARGE_Q, [RUBRIC])
    [v] = only_result(run(suite)).verdicts
    assert v["judged"] is False and v["reason"].startswith(
        "Not judged: the judge model's reply held no verdict"
    )
    judge.clear()
    judge.expect_request("/v1/chat/completions").respond_with_data("down", status=503)
    [v] = CaseResult.objects.filter(run=run(suite)).get().verdicts
    assert v["judged"] is False and v["reason"].startswith("Not judged: the judge model could not be reached")


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"verdict": "pass", "reasoning": "ok"}', (True, "ok")),
        ('Here:\n```json\n{"verdict": "FAIL", "reasoning": "missing"}\n```', (False, "missing")),
        ('Verdict follows {"verdict": "failed"}', (False, "")),
        ('{"verdict": "maybe"}', None),
        ("[1, 2]", None),
        ("", None),
    ],
)
def test_parse_verdict(content, expected):
    assert parse_verdict(content) == expected


# --- Marks and agreement -----------------------------------------------------------------------------
def test_agreement_counts_only_cases_with_both_a_verdict_and_a_mark(judge, suite, editor):
    judge.expect_request("/v1/chat/completions").respond_with_json(verdict(True))
    add_case(suite, "A", REVERSE_CHARGE_Q, [RUBRIC])
    add_case(suite, "B", "What must every invoice show?", [RUBRIC])
    add_case(suite, "C", "What must every invoice show?", [{"kind": "not_blocked"}])
    first = run(suite)
    a, b, c = CaseResult.objects.filter(run=first).order_by("id")
    assert judge_agreement(suite=suite).rate is None
    services.result_mark(result=a, actor=editor, passed=True)  # agrees (judge passed)
    services.result_mark(result=b, actor=editor, passed=False)  # disagrees
    services.result_mark(result=c, actor=editor, passed=False)  # no judge verdict: not compared
    agreement = judge_agreement(suite=suite)
    assert (agreement.agreed, agreement.compared, agreement.rate) == (1, 2, Decimal("0.500"))
    services.result_mark(result=b, actor=editor, passed=None)  # withdrawn
    assert judge_agreement(suite=suite).rate == Decimal("1.000")
    b.refresh_from_db()
    assert b.human_passed is None and b.marked_by is None and b.marked_at is None


def test_a_rubric_with_min_agreement_counts_only_once_the_judge_is_calibrated(judge, suite, editor):
    judge.expect_request("/v1/chat/completions").respond_with_json(verdict(False, "Wrong."))
    add_case(suite, "Gated", REVERSE_CHARGE_Q, [{**RUBRIC, "min_agreement": 0.8}])
    first = only_result(run(suite))
    [v] = first.verdicts
    assert v["judged"] and v["passed"] is False and v["counts"] is False
    assert "Recorded, not counted" in v["reason"] and "no case yet" in v["reason"]
    assert first.passed  # the failing verdict did not count: the completed run decides
    services.result_mark(result=first, actor=editor, passed=False)  # a person agrees with the judge
    second = only_result(run(suite))
    [v] = second.verdicts
    assert v["counts"] is True and not second.passed


def test_the_mark_is_audited(judge, suite, editor):
    judge.expect_request("/v1/chat/completions").respond_with_json(verdict(True))
    add_case(suite, "A", REVERSE_CHARGE_Q, [RUBRIC])
    result = only_result(run(suite))
    services.result_mark(result=result, actor=editor, passed=False)
    event = AuditEvent.objects.get(action="evaluation_result.mark")
    assert event.after["human_passed"] is False and event.actor_user_id == editor.pk


# --- API ---------------------------------------------------------------------------------------------
def mark_url(result):
    return f"/api/v1/evaluation-case-results/{result.pk}/mark/"


@pytest.fixture
def result(suite):
    add_case(suite, "A", REVERSE_CHARGE_Q, [{"kind": "not_blocked"}])
    return only_result(run(suite))


def test_an_editor_marks_through_the_api(editor_client, result, editor):
    response = editor_client.post(mark_url(result), {"passed": False}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["human_passed"] is False and response.json()["marked_by"] == editor.pk
    response = editor_client.post(mark_url(result), {"passed": None}, format="json")
    assert response.json()["human_passed"] is None
    detail = editor_client.get(f"/api/v1/evaluation-runs/{result.run_id}/").json()
    assert detail["results"][0]["human_passed"] is None


def test_marks_refuse_viewers_strangers_and_bad_input(
    viewer_client, editor_client, result, other_org, api_client
):
    assert_error(viewer_client.post(mark_url(result), {"passed": True}, format="json"), 403)
    stranger = UserFactory(username="stranger")
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert_error(client_for(stranger).post(mark_url(result), {"passed": True}, format="json"), 404)
    assert api_client.post(mark_url(result), {"passed": True}, format="json").status_code in (401, 403)
    response = editor_client.post(mark_url(result), {"passed": "perhaps"}, format="json")
    assert_error(response, 400)
    assert "passed" in response.json()["errors"]
    assert_error(editor_client.post(mark_url(result), {}, format="json"), 400)
    result.refresh_from_db()
    assert result.human_passed is None
