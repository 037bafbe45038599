"""ASVS 5.0 level 2, chapter V2 (Validation and business logic), as far as the agent wizard goes: an
agent is created only through its steps in order, each valid when the agent is created, whatever
URL is posted to first."""

from __future__ import annotations

import pytest

from agents.models import Agent
from tests.factories import AgentFactory, ToolFactory

pytestmark = pytest.mark.django_db

WIZARD = "/admin/agents/agent/wizard/"
PERSONA = {
    "persona_name": "Default",
    "system_prompt": "You are a payroll assistant. Cite the firm's guidance.",
    "language": "en",
    "temperature": "0.20",
}


def test_v2_3_1_steps_cannot_be_skipped(staff_client, org):
    """ASVS 5.0 V2.3.1: the flow runs in its sequential step order without skipping steps — a later
    step posted first does not move on (it sends back to Basics), and the review creates nothing until
    every earlier step is done."""
    tool = ToolFactory(organization=org, name="Payroll calculator")
    response = staff_client.post(f"{WIZARD}tools/", {"tools": [tool.pk]})
    assert response.status_code == 302 and response["Location"] == f"{WIZARD}basics/"
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    assert response.status_code == 302 and response["Location"] == f"{WIZARD}basics/"
    staff_client.post(f"{WIZARD}basics/", {"name": "Payroll", "type": "general"})
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    assert response["Location"] == f"{WIZARD}persona/"
    assert not Agent.objects.filter(organization=org).exists()


def test_v2_3_1_each_step_is_valid_when_the_agent_is_created(staff_client, org):
    """ASVS 5.0 V2.3.1: a step done earlier is judged again when the agent is created — a name another
    agent took meanwhile sends back to Basics and creates nothing; renamed, the same wizard creates it."""
    staff_client.post(WIZARD, {"name": "Payroll", "type": "general"})
    staff_client.post(f"{WIZARD}persona/", PERSONA)
    for step in ("tools", "knowledge", "guardrails"):
        staff_client.post(f"{WIZARD}{step}/", {})
    assert staff_client.get(f"{WIZARD}review/").status_code == 200
    AgentFactory(organization=org, name="PAYROLL")
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    assert response.status_code == 302 and response["Location"] == f"{WIZARD}basics/"
    assert Agent.objects.filter(organization=org).count() == 1
    staff_client.post(f"{WIZARD}basics/", {"name": "Payroll (Mira)", "type": "general"})
    response = staff_client.post(f"{WIZARD}review/", {"_create": "1"})
    created = Agent.objects.get(organization=org, name="Payroll (Mira)")
    assert response["Location"] == f"/admin/agents/agent/{created.pk}/overview/"
