"""The console's compare (``agents.console.compare``): one question asked of two releases (or a release
and the draft), answers side by side (``agents.comparison``)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.comparison import Side, compare
from agents.evidence import evidence_queryset
from agents.models import Execution
from agents.runtime import execute
from tests.agents.evidence.conftest import CALCULATION, IBAN, QUESTION
from tests.agents.runtime.conftest import DISCLAIMER
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db


def _url(agent) -> str:
    return reverse("admin:console:compare", args=[agent.pk])


def test_one_question_against_two_releases_side_by_side(vat_agent, second_release, editor):
    """Both runs are test runs of the editor, each pinned to its release; the page shows both answers,
    with the rows that differ marked (release, answer, guardrail verdicts)."""
    web = login(editor)
    response = web.post(
        _url(vat_agent), {"left": "1", "right": "2", "message": QUESTION, "as_of": "2025-03-01"}
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    runs = list(Execution.objects.filter(agent=vat_agent).order_by("id"))
    assert [r.release.number for r in runs] == [1, 2]
    assert all(r.is_test and r.source == "console" and r.actor_user == editor for r in runs)
    assert all(r.as_of.isoformat() == "2025-03-01" for r in runs)
    html = response.content.decode()
    assert f"Release 1 · execution #{runs[0].pk}" in html and f"Release 2 · execution #{runs[1].pk}" in html
    assert html.count(DISCLAIMER) == 1  # only release 1 appends it
    assert "pg-compare-differs" in html and "Tool calls" in html and "Latency" in html
    assert "agents/comparison.css" in html


def test_a_release_against_the_draft(vat_agent, editor):
    web = login(editor)
    response = web.post(_url(vat_agent), {"left": "1", "right": "draft", "message": CALCULATION})
    assert response.status_code == 200
    left, right = Execution.objects.filter(agent=vat_agent).order_by("id")
    assert left.release.number == 1 and right.release is None and right.is_test
    html = response.content.decode()
    assert "draft (the live configuration)" in html
    assert "vat-calculator" in html or "VAT calculator" in html


def test_bad_input_is_a_400_and_runs_nothing(vat_agent, editor):
    web = login(editor)
    for data in (
        {"left": "1", "right": "7", "message": QUESTION},
        {"left": "1", "right": "1", "message": "   "},
        {"left": "1", "right": "1", "message": QUESTION, "as_of": "someday"},
    ):
        response = web.post(_url(vat_agent), data)
        assert response.status_code == 400, data
    assert (
        "Choose the draft or one of this agent" in web.post(_url(vat_agent), {"left": "9"}).content.decode()
    )
    assert not Execution.objects.exists()


def test_viewers_see_the_page_but_cannot_ask_and_other_organisations_get_404(vat_agent, viewer, other_org):
    web = login(viewer)
    page = web.get(_url(vat_agent))
    assert page.status_code == 200 and "Asking needs the editor role" in page.content.decode()
    assert web.post(_url(vat_agent), {"left": "1", "right": "1", "message": QUESTION}).status_code == 403
    stranger = UserFactory(is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert login(stranger).get(_url(vat_agent)).status_code == 404
    assert not Execution.objects.exists()


def test_the_console_links_to_the_compare(vat_agent, editor):
    page = login(editor).get(reverse("admin:console:index") + f"?agent={vat_agent.pk}")
    assert _url(vat_agent) in page.content.decode()


def test_the_comparison_masks_a_side_its_viewer_may_not_see(vat_agent, editor):
    """The presentation applies the identifier rule per side: masked where ``visible`` is false."""
    run = execute(vat_agent, f"Is {IBAN} a valid IBAN?", actor=editor, source="api")
    run = evidence_queryset().get(pk=run.pk)
    shown = compare(Side("A", run), Side("B", run), left_visible=True, right_visible=False)
    answer = next(row for row in shown["rows"] if row.label == "Answer")
    assert "3704" in answer.left[0]
    assert "3704" not in answer.right[0] and "DE89" in answer.right[0]
    assert answer.differs
    assert shown["masked"] is True
