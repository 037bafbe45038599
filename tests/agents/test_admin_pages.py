"""Staff pages of the agents app: model providers, learning examples, feedback."""

from __future__ import annotations

import pytest

from agents.models import LearningExample, ModelProvider
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    LearningExampleFactory,
    ModelProviderFactory,
)

pytestmark = pytest.mark.django_db


# --- Providers --------------------------------------------------------------------------------

PROVIDER = {
    "name": "Azure OpenAI",
    "kind": "openai_compatible",
    "base_url": "https://firm.openai.azure.com/v1",
    "api_key": "sk-very-secret",
    "default_model": "gpt-4o-mini",
    "price_input_per_1k": "0.00015",
    "price_output_per_1k": "0.0006",
    "timeout_seconds": 30,
    "max_retries": 2,
}


def test_provider_api_key_is_write_only(admin_role_client, org):
    response = admin_role_client.post("/admin/agents/modelprovider/add/", PROVIDER)
    assert response.status_code == 302, response.content[:2000]
    provider = ModelProvider.objects.get(organization=org, name="Azure OpenAI")
    assert provider.api_key == "sk-very-secret"
    url = f"/admin/agents/modelprovider/{provider.pk}/change/"
    page = admin_role_client.get(url).content.decode()
    assert "sk-very-secret" not in page and "Stored — leave blank to keep" in page
    admin_role_client.post(url, {**PROVIDER, "api_key": "", "default_model": "gpt-4o"})
    provider.refresh_from_db()
    assert provider.api_key == "sk-very-secret" and provider.default_model == "gpt-4o"
    admin_role_client.post(url, {**PROVIDER, "api_key": "", "clear_api_key": "on"})
    provider.refresh_from_db()
    assert provider.api_key == ""
    event = AuditEvent.objects.filter(action="provider.create").get()
    assert "sk-very-secret" not in str(event.after)


def test_provider_form_validation(admin_role_client, org):
    ModelProviderFactory(organization=org, name="Taken")
    response = admin_role_client.post("/admin/agents/modelprovider/add/", {**PROVIDER, "base_url": ""})
    assert "needs a base URL" in response.content.decode()
    response = admin_role_client.post(
        "/admin/agents/modelprovider/add/", {**PROVIDER, "name": "taken", "price_input_per_1k": "-1"}
    )
    html = response.content.decode()
    assert "greater than or equal to 0" in html or "cannot be negative" in html
    response = admin_role_client.post("/admin/agents/modelprovider/add/", {**PROVIDER, "name": "taken"})
    assert "already exists in this organisation" in response.content.decode()
    assert ModelProvider.objects.filter(organization=org).count() == 1


def test_editors_read_providers_without_seeing_keys(staff_client, org):
    provider = ModelProviderFactory(organization=org, api_key="sk-hidden")
    page = staff_client.get(f"/admin/agents/modelprovider/{provider.pk}/change/").content.decode()
    assert "sk-hidden" not in page and 'name="_save"' not in page
    assert staff_client.get("/admin/agents/modelprovider/add/").status_code == 403


def test_learning_examples_approve_and_reject(staff_client, org):
    first = LearningExampleFactory(agent__organization=org)
    second = LearningExampleFactory(agent=first.agent, organization=org)
    response = staff_client.post(
        "/admin/agents/learningexample/",
        {"action": "approve_selected", "_selected_action": [first.pk]},
        follow=True,
    )
    assert "1 learning examples approved" in response.content.decode()
    staff_client.post(
        "/admin/agents/learningexample/", {"action": "reject_selected", "_selected_action": [second.pk]}
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("approved", "rejected")


def test_learning_example_written_and_edited(staff_client, org, other_org):
    agent = AgentFactory(organization=org)
    foreign = AgentFactory(organization=other_org)
    response = staff_client.post(
        "/admin/agents/learningexample/add/", {"agent": agent.pk, "input": "Q?", "output": "A."}
    )
    assert response.status_code == 302
    example = LearningExample.objects.get(agent=agent)
    assert example.status == "proposed"
    response = staff_client.post(
        "/admin/agents/learningexample/add/", {"agent": foreign.pk, "input": "Q?", "output": "A."}
    )
    assert "Select a valid choice" in response.content.decode()
    response = staff_client.post(
        "/admin/agents/learningexample/add/", {"agent": agent.pk, "input": "", "output": ""}
    )
    assert response.content.decode().count("This field is required") == 2
    staff_client.post(
        f"/admin/agents/learningexample/{example.pk}/change/", {"input": "Q2?", "output": "A2."}
    )
    example.refresh_from_db()
    assert example.input == "Q2?"


def test_viewers_cannot_approve(viewer_admin_client, org):
    example = LearningExampleFactory(agent__organization=org)
    viewer_admin_client.post(
        "/admin/agents/learningexample/", {"action": "approve_selected", "_selected_action": [example.pk]}
    )
    example.refresh_from_db()
    assert example.status == "proposed"


def test_feedback_list_links_to_executions(staff_client, world):
    html = staff_client.get("/admin/agents/feedback/").content.decode()
    assert f"/admin/agents/execution/{world.execution.pk}/change/" in html and "reverse charge" in html
    assert staff_client.get("/admin/agents/feedback/add/").status_code == 403
