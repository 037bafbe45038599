"""The request context is the one way a client's address reaches an audit event: services take no
``ip``; the middleware (``prisma_glow.audit.context``) sets it for the request, whichever app's
service records the event, and work outside a request records none."""

from __future__ import annotations

import pytest

from agents import services as agent_services
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy import services as tenancy_services
from tests.conftest import client_for
from tests.factories import AgentFactory, AgentToolFactory, GuardrailFactory, ToolFactory

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.9"


def _requests(org):
    """(method, path, body, audit action) for a write of each app, and of the platform."""
    agent = AgentFactory(organization=org)
    tool = ToolFactory(organization=org)
    assignment = AgentToolFactory(agent=agent, tool=ToolFactory(organization=org))
    guardrail = GuardrailFactory(organization=org)
    return [
        ("post", "/api/v1/agents/", {"name": "Ledger helper"}, "agent.create"),
        (
            "post",
            f"/api/v1/agents/{agent.pk}/personas/",
            {"name": "P", "system_prompt": "Be brief."},
            "persona.create",
        ),
        ("patch", f"/api/v1/tools/{tool.pk}/", {"description": "Rates"}, "tool.update"),
        (
            "patch",
            f"/api/v1/agents/{agent.pk}/tools/{assignment.pk}/",
            {"enabled": False},
            "agenttool.update",
        ),
        ("delete", f"/api/v1/guardrails/{guardrail.pk}/", None, "guardrail.delete"),
        ("post", "/api/v1/knowledge-bases/", {"name": "Handbook"}, "knowledge_base.create"),
        ("post", "/api/v1/api-keys/", {"name": "CI", "scopes": ["read"]}, "api_key.create"),
    ]


def test_an_api_write_records_the_clients_address(org, owner):
    client = client_for(owner)
    for method, path, body, action in _requests(org):
        response = getattr(client, method)(path, body, format="json", REMOTE_ADDR=ADDRESS)
        assert response.status_code in (200, 201, 204), (path, response.content)
        assert AuditEvent.objects.get(action=action).ip == ADDRESS, action


def test_an_ipv6_client_is_recorded_in_canonical_form(org, owner):
    client_for(owner).post(
        "/api/v1/agents/", {"name": "V6"}, format="json", REMOTE_ADDR="2001:DB8:0:0:0:0:0:1"
    )
    assert AuditEvent.objects.get(action="agent.create").ip == "2001:db8::1"


def test_a_write_outside_a_request_records_no_address(org, owner):
    agent = agent_services.agent_create(organization=org, actor=owner, name="From a script")
    tenancy_services.api_key_create(organization=org, actor=None, name="Cron", scopes=["read"])
    assert AuditEvent.objects.get(action="agent.create", object_id=str(agent.pk)).ip is None
    assert AuditEvent.objects.get(action="api_key.create").ip is None


@pytest.mark.parametrize(
    "service",
    [
        agent_services.agent_create,
        agent_services.agent_update,
        agent_services.assignment_create,
        tenancy_services.membership_add,
        tenancy_services.api_key_revoke,
    ],
)
def test_services_take_no_ip(service):
    """The address is not a service's argument: passing one is a TypeError, not a second channel."""
    with pytest.raises(TypeError):
        service(ip=ADDRESS)
