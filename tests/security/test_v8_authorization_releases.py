"""ASVS 5.0 V8 (authorization) for agents' releases: who may read and create them, through the API
and the staff UI alike; only approved releases answer clients; live approval settings only tighten; a
repointed provider needs a new approved release."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.exceptions import AgentNotRunnable
from agents.models import Agent, AgentTool, Execution, ModelProvider, Release, ToolApproval
from agents.runtime import execute
from agents.runtime.approvals import needs_approval
from agents.selectors import release_run_configuration
from agents.services import release_create
from tests.agents.runtime.conftest import builtin, make_agent, vat_kb  # noqa: F401 (fixtures)
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    ModelProviderFactory,
    PersonaFactory,
    release_now,
)
from tests.support.api import assert_error
from tools.models import Tool

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_release(other_org):
    agent = AgentFactory(organization=other_org, name="Their adviser")
    PersonaFactory(agent=agent, is_active=True)
    return release_create(agent=agent, actor=None, notes="Theirs")


def test_another_organisations_releases_are_not_found(foreign_release, editor_client, staff_client):
    """ASVS 5.0 V8.2.2: data-specific access — another organisation's release, its diff and its
    agent's release list answer 404 through the API and the staff UI; nothing is created there."""
    agent = foreign_release.agent
    base = f"/api/v1/agents/{agent.pk}/releases/"
    for response in (
        editor_client.get(base),
        editor_client.get(f"{base}1/"),
        editor_client.get(f"{base}1/diff/?against=1"),
        editor_client.post(base, {"notes": "mine"}, format="json"),
        staff_client.get(reverse("admin:agents_agent_release", args=[agent.pk, 1])),
        staff_client.get(reverse("admin:agents_agent_release_diff", args=[agent.pk]) + "?a=1&b=1"),
        staff_client.post(reverse("admin:agents_agent_release_create", args=[agent.pk])),
    ):
        assert response.status_code == 404
    assert Release.objects.filter(agent=agent).count() == 1


def test_creating_a_release_needs_the_editor_role_or_the_write_scope(org, viewer_client, viewer_admin_client):
    """ASVS 5.0 V8.2.1: function-level access — a viewer (API and staff UI) and a `read` key may read
    releases but not create one (403); a `write` key may."""
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True)
    url = f"/api/v1/agents/{agent.pk}/releases/"
    reader = client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)
    writer = client_for(key=APIKeyFactory(organization=org, scopes=["write"]).plaintext)
    assert viewer_client.post(url, {}, format="json").status_code == 403
    assert reader.post(url, {}, format="json").status_code == 403
    assert (
        viewer_admin_client.post(reverse("admin:agents_agent_release_create", args=[agent.pk])).status_code
        == 403
    )
    assert not Release.objects.filter(agent=agent).exists()
    assert viewer_client.get(url).status_code == reader.get(url).status_code == 200
    assert writer.post(url, {"notes": "From CI"}, format="json").status_code == 201


QUESTION = "Who accounts for the VAT on cross-border B2B services?"


def _execute(agent, org, body):
    key = APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext
    return client_for(key=key).post(f"/api/v1/agents/{agent.pk}/execute/", body, format="json")


def test_v8_1_1_a_release_nobody_approved_never_answers_clients(org, make_agent):  # noqa: F811
    """ASVS 5.0 V8.1.1 (documented rules enforced): pinning a release that was never activated — nor
    reaching it through the deprecated ``persona`` option — is refused (409 both) and runs nothing; a
    test run (console, replay, evaluations) may run it."""
    agent = make_agent()
    agent.personas.update(is_active=False)
    PersonaFactory(agent=agent, version=2, is_active=True, system_prompt="Unapproved prompt.")
    unapproved = release_now(agent, activate=False)
    assert unapproved.number == 2 and unapproved.activated_at is None
    before = Execution.objects.count()
    body = assert_error(_execute(agent, org, {"input": QUESTION, "release": 2}), 409)
    assert body["message"] == (
        "Release 2 of 'VAT adviser' has never been approved: request its activation, or run it as a "
        "test in the console."
    )
    body = assert_error(_execute(agent, org, {"input": QUESTION, "persona": 2}), 409)
    assert body["message"].startswith("No approved release of this agent uses persona version 2")
    assert Execution.objects.count() == before
    with pytest.raises(AgentNotRunnable, match="never been approved"):
        execute(agent, QUESTION, source="api", release=2)
    assert execute(agent, QUESTION, source="console", is_test=True, release=2).release == unapproved
    # The default still runs the active (approved) release.
    assert _execute(agent, org, {"input": QUESTION}).json()["release"] == 1


def test_v8_1_1_an_earlier_approved_release_may_still_be_pinned(org, make_agent):  # noqa: F811
    """ASVS 5.0 V8.1.1: once a release has been live (approved), a client may pin it after the agent
    moved on — rolling the agent back stays a request and an approval."""
    agent = make_agent()
    agent.personas.update(is_active=False)
    PersonaFactory(agent=agent, version=2, is_active=True, system_prompt="Version two.")
    second = release_now(agent)
    second.refresh_from_db()
    assert second.activated_at is not None
    first = Release.objects.get(agent=agent, number=1)
    assert first.activated_at is not None and first.activated_at <= second.activated_at
    body = _execute(agent, org, {"input": QUESTION, "release": 1}).json()
    assert (body["release"], body["persona_version"]) == (1, 1)
    assert _execute(agent, org, {"input": QUESTION, "persona": 1}).json()["release"] == 1
    assert Agent.objects.get(pk=agent.pk).active_release == second


VAT_QUESTION = "What is the VAT on €1,000 at 19%?"


def test_v8_1_1_approval_switched_on_live_reaches_a_running_release(org, make_agent, editor):  # noqa: F811
    """ASVS 5.0 V8.1.1 (business rules enforced at once): requiring approval for a tool on the live
    assignment makes the running release's calls wait for a person without a new release; the live rows
    only tighten — switching approval off live does not loosen a release that requires it."""
    agent = make_agent(guards=None)
    calculator = builtin("vat-calculator")
    assert execute(agent, VAT_QUESTION, actor=editor, source="api").status == "completed"
    AgentTool.objects.filter(agent=agent, tool=calculator).update(requires_approval=True)
    paused = execute(agent, VAT_QUESTION, actor=editor, source="api")
    assert paused.status == "awaiting_approval" and paused.release == agent.active_release
    assert ToolApproval.objects.get(execution=paused).tool_name == "VAT calculator"

    strict = make_agent(name="Strict VAT", guards=None)
    AgentTool.objects.filter(agent=strict, tool=calculator).update(requires_approval=True)
    release_now(strict)
    AgentTool.objects.filter(agent=strict, tool=calculator).update(requires_approval=False)
    assert execute(strict, VAT_QUESTION, actor=editor, source="api").status == "awaiting_approval"


def test_v8_1_1_the_tools_own_live_switch_tightens_too(make_agent):  # noqa: F811
    """ASVS 5.0 V8.1.1: the tool's own ``requires_approval`` turned on live counts for a release whose
    assignment follows the tool (read in the same query as the tool's enabled switch)."""
    agent = make_agent(guards=None)
    calculator = builtin("vat-calculator")
    loaded = release_run_configuration(release=agent.active_release)
    assert not needs_approval(next(t for t in loaded.tools if t.pk == calculator.pk))
    Tool.objects.filter(pk=calculator.pk).update(requires_approval=True)
    loaded = release_run_configuration(release=agent.active_release)
    assert needs_approval(next(t for t in loaded.tools if t.pk == calculator.pk))


def test_v8_1_1_a_repointed_provider_needs_a_new_approved_release(org, make_agent, editor):  # noqa: F811
    """ASVS 5.0 V8.1.1 (segregation of duties): one admin repointing the provider (kind or base URL)
    does not change where a release's runs go: the run is refused (409, saying so) until a new release
    is created and approved; rotating the provider's key needs no release."""
    provider = ModelProviderFactory(organization=org, name="Engine", kind="offline", api_key="sk-one")
    agent = make_agent(provider=provider, guards=None)
    assert agent.active_release.snapshot["provider"]["id"] == provider.pk
    ModelProvider.objects.filter(pk=provider.pk).update(api_key="sk-two")
    assert _execute(agent, org, {"input": QUESTION}).status_code == 201
    before = Execution.objects.count()
    ModelProvider.objects.filter(pk=provider.pk).update(base_url="https://elsewhere.example/v1")
    body = assert_error(_execute(agent, org, {"input": QUESTION}), 409)
    assert body["message"] == (
        "The provider 'Engine' now points elsewhere (base URL changed since release 1): create and "
        "approve a new release."
    )
    ModelProvider.objects.filter(pk=provider.pk).update(
        kind="openai_compatible", base_url="https://elsewhere.example/v1"
    )
    body = assert_error(_execute(agent, org, {"input": QUESTION}), 409)
    assert "(kind and base URL changed since release 1)" in body["message"]
    assert Execution.objects.count() == before
    ModelProvider.objects.filter(pk=provider.pk).update(kind="offline", base_url="")
    assert _execute(agent, org, {"input": QUESTION}).status_code == 201
