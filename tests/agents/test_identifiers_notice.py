"""An agent without a PII guardrail says so, on its page and in the console: "client identifiers are
sent to the provider as typed". Any enabled PII guardrail, whatever its stages and action, screens
what the agent sends (the privacy boundary), so the notice goes."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import AgentGuardrail
from agents.selectors import agent_screens_identifiers
from tests.factories import AgentFactory, AgentGuardrailFactory, GuardrailFactory, PersonaFactory

pytestmark = pytest.mark.django_db

NOTICE = "client identifiers are sent to the provider as typed"


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser", status="active")
    PersonaFactory(agent=agent, is_active=True)
    AgentGuardrailFactory(
        agent=agent, order=0, guardrail=GuardrailFactory(organization=org, name="Topics", kind="keywords",
                                                         action="block", config={"keywords": ["falcon"]}),
    )  # fmt: skip
    return agent


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pages(client, agent) -> dict[str, str]:
    return {
        "agent page": client.get(f"/admin/agents/agent/{agent.pk}/overview/").content.decode(),
        "console": client.get("/admin/console/", {"agent": agent.pk}).content.decode(),
    }


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_an_agent_without_a_pii_guardrail_says_so(agent, role, request):
    client = _signed_in(request.getfixturevalue(role))
    for page, html in _pages(client, agent).items():
        assert NOTICE in html, page
    assert agent_screens_identifiers(agent=agent) is False


@pytest.mark.parametrize(
    ("stage", "action"),
    [("input", "redact"), ("retrieval", "block"), ("output", "warn")],
)
def test_any_pii_guardrail_removes_the_notice(agent, org, editor, stage, action):
    flags = {f"applies_to_{s}": s == stage for s in ("input", "retrieval", "output")}
    pii = GuardrailFactory(organization=org, name="PII", kind="pii", action=action, config={}, **flags)
    AgentGuardrailFactory(agent=agent, order=1, guardrail=pii)
    assert agent_screens_identifiers(agent=agent) is True
    for page, html in _pages(_signed_in(editor), agent).items():
        assert NOTICE not in html, page


def test_a_disabled_pii_guardrail_or_assignment_does_not_count(agent, org, editor):
    pii = GuardrailFactory(organization=org, name="PII", kind="pii", action="redact", config={})
    AgentGuardrailFactory(agent=agent, order=1, guardrail=pii, enabled=False)
    assert agent_screens_identifiers(agent=agent) is False
    AgentGuardrail.objects.filter(agent=agent, guardrail=pii).update(enabled=True)
    assert agent_screens_identifiers(agent=agent) is True
    pii.enabled = False
    pii.save(update_fields=["enabled"])
    assert agent_screens_identifiers(agent=agent) is False
    assert NOTICE in _pages(_signed_in(editor), agent)["console"]
