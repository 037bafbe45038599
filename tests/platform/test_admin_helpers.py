"""Helpers of the staff UI: highlighting, percentiles, the selected organisation."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from prisma_glow.admin.scoping import SESSION_KEY, get_admin_access
from prisma_glow.admin.templatetags import duration_ms, highlight_spans, highlight_terms, money
from tests.factories import MembershipFactory


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
    assert money(None) == "—" and money("0.5") == "0.5000" and money("0.012345", "EUR") == "EUR 0.0123"
    assert duration_ms(0.25) == "0.25 ms" and duration_ms(850) == "850 ms" and duration_ms(2400) == "2.4 s"


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
    assert access.organization == other_org and access.role == "viewer" and not access.may("agent.change")


def test_every_organisation_owned_model_declares_its_path_to_the_organisation():
    """Scoping (staff UI and API) reads each model's ``organization_path``: every model of the project
    with a relation to an organisation declares one, and each path ends at the organisation."""
    from django.apps import apps

    from prisma_glow.tenancy.models import Organization

    ours = {"agents", "personas", "tools", "guardrails", "knowledge", "tenancy", "audit", "evaluations"}
    declared = {
        m._meta.label_lower: m.organization_path
        for m in apps.get_models()
        if getattr(m, "organization_path", None)
    }
    assert declared == {
        "agents.agent": "organization",
        "agents.modelprovider": "organization",
        "agents.agenttool": "agent__organization",
        "agents.agentknowledge": "agent__organization",
        "agents.agentguardrail": "agent__organization",
        "agents.execution": "organization",
        "agents.release": "organization",
        "agents.activationrequest": "organization",
        "agents.conversation": "organization",
        "agents.executionstep": "execution__organization",
        "agents.feedback": "execution__organization",
        "agents.learningexample": "organization",
        "agents.budget": "organization",
        "agents.budgetusage": "budget__organization",
        "agents.budgetreservation": "execution__organization",
        "agents.toolapproval": "execution__organization",
        "personas.persona": "agent__organization",
        "tools.tool": "organization",
        "guardrails.guardrail": "organization",
        "knowledge.knowledgebase": "organization",
        "knowledge.document": "knowledge_base__organization",
        "knowledge.chunk": "document__knowledge_base__organization",
        "tenancy.organization": "pk",
        "tenancy.membership": "organization",
        "tenancy.apikey": "organization",
        "tenancy.invitation": "organization",
        "audit.auditevent": "organization",
        "evaluations.suite": "organization",
        "evaluations.case": "suite__organization",
        "evaluations.evalrun": "organization",
        "evaluations.caseresult": "run__organization",
        "evaluations.requirement": "organization",
        "audit.auditeventagent": "event__organization",
    }
    for label, path in declared.items():
        target = apps.get_model(label)
        if path != "pk":
            for name in path.split("__"):
                target = target._meta.get_field(name).related_model
        assert target is Organization, label
    # Every model of ours that points at an organisation, directly or through a model that belongs to
    # one (a chunk through its document…), declares its path: otherwise nothing scopes its rows.
    owned = {Organization}
    changed = True
    while changed:
        changed = False
        for model in apps.get_models():
            if model in owned or model._meta.app_label not in ours:
                continue
            if any(
                (f.many_to_one or f.one_to_one) and f.concrete and f.related_model in owned
                for f in model._meta.get_fields()
            ):
                owned.add(model)
                changed = True
    missing = sorted(
        m._meta.label_lower for m in owned - {Organization} if m._meta.label_lower not in declared
    )
    assert missing == []
    shared = [
        m._meta.label_lower for m in apps.get_models() if getattr(m, "organization_shared_when_null", 0)
    ]
    assert shared == ["tools.tool"]


def test_an_organisation_scoped_admin_of_a_model_without_a_path_is_an_error():
    """``manage.py check`` names a ModelAdmin whose model declares no ``organization_path``: its pages
    would list every organisation's rows to every member."""
    from django.contrib import admin

    from agents.models import Agent
    from prisma_glow.checks import check_admin_scoping

    assert check_admin_scoping() == []
    path = Agent.organization_path
    try:
        del Agent.organization_path
        errors = check_admin_scoping()
    finally:
        Agent.organization_path = path
    assert [(e.id, e.obj) for e in errors] == [("prisma_glow.E102", admin.site._registry[Agent])]
    assert "agents.Agent" in errors[0].msg
