"""Helpers of the staff UI: highlighting, percentiles, the selected organisation."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from agents.models import Execution
from prisma_glow.admin_views.dashboard import percentile
from prisma_glow.admin_views.scoping import SESSION_KEY, get_admin_access
from prisma_glow.admin_views.templatetags import duration_ms, highlight_spans, highlight_terms, money
from tests.factories import ExecutionFactory, MembershipFactory


def test_highlight_spans_escapes_and_merges_overlaps():
    html = highlight_spans(
        "<b>IBAN</b> DE89 and me@x.eu", [(12, 16, "iban"), (14, 18, "x"), (21, 28, "email")]
    )
    assert html.startswith("&lt;b&gt;IBAN&lt;/b&gt; ")
    assert '<mark class="pg-mark" title="iban">DE89</mark>' in html
    assert '<mark class="pg-mark" title="x"> a</mark>' in html
    assert html.count("<mark") == 3


def test_highlight_spans_ignores_bad_spans():
    assert highlight_spans("abc", [(2, 1, ""), (5, 9, ""), None]) == "abc"


def test_highlight_terms_marks_query_words_case_insensitively():
    html = highlight_terms("Reverse charge: the customer accounts.", "reverse CHARGE of")
    assert (
        html
        == '<mark class="pg-mark">Reverse</mark> <mark class="pg-mark">charge</mark>: the customer accounts.'
    )


def test_number_filters():
    assert money(None) == "—" and money("0.5") == "0.50" and money("0.012345") == "0.0123"
    assert duration_ms(0.25) == "0.25 ms" and duration_ms(850) == "850 ms" and duration_ms(2400) == "2.4 s"


@pytest.mark.django_db
def test_percentile_is_nearest_rank(org):
    for latency in [10, 20, 30, 40, 1000]:
        ExecutionFactory(agent__organization=org, latency_ms=latency)
    ExecutionFactory(agent__organization=org, latency_ms=None)
    executions = Execution.objects.filter(organization=org)
    assert percentile(executions, "latency_ms", 0.95) == 1000
    assert percentile(executions, "latency_ms", 0.5) == 30
    assert percentile(executions.none(), "latency_ms", 0.95) is None


@pytest.mark.django_db
def test_selected_organisation_falls_back_when_membership_is_gone(owner, org, other_org):
    request = RequestFactory().get("/admin/")
    request.user = owner
    request.session = {SESSION_KEY: other_org.pk}
    access = get_admin_access(request)
    assert access.organization == org and access.role == "owner"
    MembershipFactory(user=owner, organization=other_org, role="viewer")
    request = RequestFactory().get("/admin/")
    request.user = owner
    request.session = {SESSION_KEY: other_org.pk}
    access = get_admin_access(request)
    assert access.organization == other_org and access.role == "viewer" and not access.has_role("editor")
