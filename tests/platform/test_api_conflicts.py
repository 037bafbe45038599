"""Every uniqueness conflict, on every resource, is a 409 ``conflict`` naming the field
(``prisma_glow.uniqueness``): found by the service's own check, by ``full_clean``, or by the database
when two writes race past validation."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import UniqueConstraint

from evaluations.models import Suite
from knowledge.models import KnowledgeBase
from prisma_glow.uniqueness import unique_violation
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    ToolFactory,
    UserFactory,
)
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Case:
    """A create that, sent twice, clashes with a unique constraint; ``fields`` the ones named."""

    url: str
    data: dict[str, Any]
    fields: tuple[str, ...]
    constraints: tuple[str, ...]
    rename: dict[str, Any] | None = None  # a second object's data before a PATCH onto the taken value


def _agent(org):
    return org.agents.filter(slug="host-agent").first() or AgentFactory(
        organization=org, name="Host agent", slug="host-agent"
    )


def _suite(org):
    return Suite.objects.get_or_create(organization=org, agent=_agent(org), name="Host suite")[0]


CASES = {
    "knowledge base": lambda org: Case(
        "/api/v1/knowledge-bases/", {"name": "EU VAT"}, ("name",), ("kb_unique_name_per_org",),
        rename={"name": "UK VAT"},
    ),
    "guardrail": lambda org: Case(
        "/api/v1/guardrails/", {"name": "No guarantees", "kind": "keywords", "config": {"keywords": ["refund"]}},
        ("name",), ("guardrail_unique_name_per_org",), rename={"name": "Other", "kind": "keywords", "config": {"keywords": ["x"]}},
    ),
    "agent": lambda org: Case(
        "/api/v1/agents/", {"name": "VAT adviser", "slug": "vat-adviser", "type": "tax"}, ("name", "slug"),
        ("agent_unique_name_per_org", "agent_unique_slug_per_org"),
        rename={"name": "Audit helper", "slug": "audit-helper", "type": "tax"},
    ),
    "tool": lambda org: Case(
        "/api/v1/tools/",
        {"name": "Rates", "slug": "rates", "url_template": "https://rates.example.com/{c}", "http_method": "GET"},
        ("name", "slug"), ("tool_unique_slug_per_org",),
    ),
    "model provider": lambda org: Case(
        "/api/v1/model-providers/", {"name": "Offline", "kind": "offline"}, ("name",),
        ("provider_unique_name_per_org",), rename={"name": "Other", "kind": "offline"},
    ),
    "budget": lambda org: Case(
        "/api/v1/budgets/", {"metric": "cost", "period": "month", "limit": "250.000000"}, ("metric", "period"),
        ("budget_unique_per_org",),
    ),
    "agent budget": lambda org: Case(
        "/api/v1/budgets/",
        {"agent": _agent(org).pk, "metric": "tokens", "period": "day", "limit": "1000"},
        ("metric", "period"),
        ("budget_unique_per_agent",),
    ),
    "agent tool": lambda org: Case(
        f"/api/v1/agents/{_agent(org).pk}/tools/", {"tool": ToolFactory(organization=org).pk}, ("tool",),
        ("agenttool_unique",),
    ),
    "agent knowledge base": lambda org: Case(
        f"/api/v1/agents/{_agent(org).pk}/knowledge/",
        {"knowledge_base": KnowledgeBaseFactory(organization=org).pk}, ("knowledge_base",),
        ("agentknowledge_unique",),
    ),
    "agent guardrail": lambda org: Case(
        f"/api/v1/agents/{_agent(org).pk}/guardrails/", {"guardrail": GuardrailFactory(organization=org).pk},
        ("guardrail",), ("agentguardrail_unique",),
    ),
    "evaluation suite": lambda org: Case(
        "/api/v1/evaluation-suites/", {"agent": _agent(org).pk, "name": "VAT regression"}, ("name",),
        ("evaluation_suite_unique_name_per_agent",), rename={"agent": _agent(org).pk, "name": "Smoke"},
    ),
    "evaluation case": lambda org: Case(
        f"/api/v1/evaluation-suites/{_suite(org).pk}/cases/", {"name": "Reverse charge", "input": "Who pays?"},
        ("name",), ("evaluation_case_unique_name_per_suite",),
    ),
}  # fmt: skip

# Unique constraints no API request can break, and why (the test below keeps this list complete).
NOT_REACHABLE_BY_THE_API = {
    "provider_one_default_per_org": "a new default provider takes the default over (agents.services)",
    "persona_unique_version": "the service numbers versions itself",
    "persona_one_active_per_agent": "activating a version deactivates the others",
    "tool_unique_builtin_slug": "built-in tools are installed by migrations; an org tool taking a "
    "built-in's slug is a 409 slug (tested in tests/tools)",
    "document_unique_content_per_kb": "a duplicate upload is a 409 on file (DuplicateDocument, "
    "tested in tests/knowledge)",
    "membership_unique_user_org": "members join by invitation; inviting a member is a 409 on email "
    "(tested below)",
    "invitation_one_open_per_address": "re-inviting an address replaces its open invitation",
    "execution_unique_turn": "the runtime numbers turns",
    "step_unique_ordinal": "the runtime numbers steps",
    "budgetusage_unique_period": "written by the runtime's budget accounting",
    "budgetreservation_unique": "written by the runtime's budget accounting",
    "chunk_unique_ordinal": "written by document processing",
    "accounts_backupcode_index_unique": "generated by the account security pages",
    "release_unique_number_per_agent": "the service numbers releases itself (agents.releases)",
    "activation_request_one_pending_per_agent": "a new request supersedes the pending one "
    "(tested in tests/agents/test_api_activation.py)",
    "toolapproval_one_pending_per_execution": "the runtime opens one approval when a run pauses on a "
    "tool call; deciding it closes it (tests/agents/runtime/test_tool_approval.py)",
    "evaluation_result_unique_case_per_run": "the runner records each case of a run once, skipping "
    "recorded ones when resumed (evaluations.services)",
}


@pytest.fixture
def owner_client(org):
    return client_for(MembershipFactory(organization=org, role="owner", user=UserFactory()).user)


@pytest.mark.parametrize("name", CASES)
def test_a_duplicate_create_is_a_409_naming_the_field(name, org, owner_client):
    """Creating the same thing twice: 201, then 409 ``conflict`` with the field(s) in ``errors``."""
    case = CASES[name](org)
    first = owner_client.post(case.url, case.data, format="json")
    assert first.status_code == 201, first.json()
    body = assert_error(owner_client.post(case.url, case.data, format="json"), 409, fields=case.fields[:1])
    assert body["code"] == "conflict"
    assert set(body["errors"]) <= set(case.fields), body
    assert "already" in body["message"], body


@pytest.mark.parametrize(
    "name", ["knowledge base", "guardrail", "agent", "model provider", "evaluation suite"]
)
def test_renaming_onto_a_taken_name_is_a_409(name, org, owner_client):
    """An update that takes another object's unique value is the same 409."""
    case = CASES[name](org)
    assert owner_client.post(case.url, case.data, format="json").status_code == 201
    other = owner_client.post(case.url, case.rename, format="json").json()
    response = owner_client.patch(f"{case.url}{other['id']}/", {"name": case.data["name"]}, format="json")
    assert_error(response, 409, fields=("name",))


def test_inviting_a_member_is_a_409_naming_email(org, owner_client):
    """The members door: an address that is already a member's is a 409 on ``email``."""
    MembershipFactory(organization=org, user=UserFactory(email="mira@example.com"), role="editor")
    response = owner_client.post("/api/v1/members/", {"email": "mira@example.com"}, format="json")
    assert_error(response, 409, fields=("email",))


def test_every_unique_constraint_is_covered(org):
    """A new unique constraint needs a case above (or a reason it cannot be reached by the API)."""
    covered = {name for make in CASES.values() for name in make(org).constraints}
    covered |= set(NOT_REACHABLE_BY_THE_API)
    project = {
        "agents", "personas", "tools", "guardrails", "knowledge", "tenancy", "accounts", "audit", "evaluations",
    }  # fmt: skip
    names = {
        constraint.name
        for model in apps.get_models()
        if model._meta.app_label in project
        for constraint in model._meta.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    assert names - covered == set(), "unique constraints without a conflict test"


@pytest.mark.parametrize("name", CASES)
def test_the_database_names_the_same_field(name, org, owner_client):
    """A duplicate written past validation (the ORM, as a racing request would) breaks a constraint
    that ``unique_violation`` maps to the same field(s) and 409 as validation does."""
    case = CASES[name](org)
    response = owner_client.post(case.url, case.data, format="json")
    assert response.status_code == 201
    model = next(m for m in apps.get_models() for c in m._meta.constraints if c.name == case.constraints[0])
    row = model._base_manager.get(pk=response.json()["id"])
    row.pk = None
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        row.save(force_insert=True)
    violation = unique_violation(caught.value)
    assert violation is not None, caught.value
    assert set(violation.fields) <= set(case.fields) and "already" in violation.message


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_are_a_409_naming_the_field(org, owner_client):
    """PostgreSQL: another transaction holds an uncommitted knowledge base with the name while the API
    creates one; validation cannot see it, the INSERT waits, and the unique index refuses it when the
    other commits: 409 ``conflict`` on ``name``, as validation would have answered."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: a second create cannot race past validation")
    inserted, done = threading.Event(), threading.Event()

    def racer():
        from django.db import connection as own

        try:
            with transaction.atomic():
                KnowledgeBase.objects.create(organization=org, name="EU VAT")
                inserted.set()
                deadline = time.monotonic() + 15
                with own.cursor() as cursor:
                    while time.monotonic() < deadline:  # commit once the API's INSERT waits on us
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.02)
        finally:
            own.close()
            done.set()

    thread = threading.Thread(target=racer)
    thread.start()
    assert inserted.wait(10)
    response = owner_client.post("/api/v1/knowledge-bases/", {"name": "EU VAT"}, format="json")
    thread.join(20)
    body = assert_error(response, 409, fields=("name",))
    assert body["errors"]["name"] == ["A knowledge base with this name already exists in this organisation."]
    assert KnowledgeBase.objects.filter(organization=org, name="EU VAT").count() == 1
