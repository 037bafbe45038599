"""Fixtures of the staff UI's tests (loaded by tests/conftest.py): Django test clients signed in as
members of each role, and ``world``, a set of objects with the URL of every page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import MembershipFactory, OrganizationFactory, UserFactory


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(editor):
    """An editor of ``org`` (staff, as every member who uses the admin)."""
    return editor


@pytest.fixture
def staff_client(editor):
    return login(editor)


@pytest.fixture
def viewer_admin_client(viewer):
    return login(viewer)


@pytest.fixture
def admin_role_client(admin_user):
    return login(admin_user)


@pytest.fixture
def non_staff_client(org):
    user = UserFactory(username="not-staff", is_staff=False)
    MembershipFactory(user=user, organization=org, role="owner")
    return login(user)


@pytest.fixture
def outsider_org(db):
    return OrganizationFactory(name="Elsewhere", slug="elsewhere")


class World:
    """One organisation's objects of every kind, for visiting every page."""

    def __init__(self, org, owner_user):
        from django.utils import timezone

        from prisma_glow.audit.services import audit_record
        from tests.factories import (
            AgentFactory,
            AgentGuardrailFactory,
            AgentKnowledgeFactory,
            AgentToolFactory,
            APIKeyFactory,
            BudgetFactory,
            ChunkFactory,
            ConversationFactory,
            DocumentFactory,
            ExecutionFactory,
            ExecutionStepFactory,
            FeedbackFactory,
            GuardrailFactory,
            InvitationFactory,
            KnowledgeBaseFactory,
            LearningExampleFactory,
            ModelProviderFactory,
            PersonaFactory,
            ToolApprovalFactory,
            ToolFactory,
        )

        self.org = org
        self.provider = ModelProviderFactory(organization=org, name=f"Offline {org.slug}")
        self.agent = AgentFactory(organization=org, name=f"VAT adviser {org.slug}", slug=f"vat-{org.slug}")
        self.persona = PersonaFactory(agent=self.agent, is_active=True)
        self.persona2 = PersonaFactory(agent=self.agent, system_prompt="You are a senior VAT specialist.")
        self.tool = ToolFactory(organization=org, name=f"Lookup {org.slug}", slug=f"lookup-{org.slug}")
        self.guardrail = GuardrailFactory(organization=org, name=f"No secrets {org.slug}")
        self.kb = KnowledgeBaseFactory(organization=org, name=f"EU VAT guidance {org.slug}")
        self.document = DocumentFactory(knowledge_base=self.kb, title=f"VAT manual {org.slug}", chunk_count=2)
        self.chunk = ChunkFactory(document=self.document, ordinal=0)
        ChunkFactory(document=self.document, ordinal=1, text="Invoices must state 'reverse charge'.")
        self.tool_assignment = AgentToolFactory(agent=self.agent, tool=self.tool)
        self.knowledge_assignment = AgentKnowledgeFactory(agent=self.agent, knowledge_base=self.kb)
        self.guardrail_assignment = AgentGuardrailFactory(agent=self.agent, guardrail=self.guardrail)
        self.execution = ExecutionFactory(agent=self.agent, persona=self.persona, cost="0.0125")
        self.failed = ExecutionFactory(
            agent=self.agent, status="failed", error="provider timed out after 30 s"
        )
        ExecutionStepFactory(execution=self.execution, ordinal=1, kind="guardrail", name="PII")
        ExecutionStepFactory(
            execution=self.execution,
            ordinal=2,
            kind="model_call",
            name="offline",
            input={"messages": 3},
            output={"text": "The VAT is €190.00."},
            started_at=timezone.now(),
        )
        self.feedback = FeedbackFactory(
            execution=self.execution, rating=-1, correction="Say 'reverse charge'."
        )
        self.conversation = ConversationFactory(agent=self.agent, organization=org)
        self.execution.conversation, self.execution.turn = self.conversation, 1
        self.execution.save(update_fields=["conversation", "turn"])
        self.example = LearningExampleFactory(agent=self.agent, organization=org)
        # A run paused for a tool call's approval, of its own agent (the VAT adviser's figures stay).
        self.clerk = AgentFactory(organization=org, name=f"Payments clerk {org.slug}", slug=f"pay-{org.slug}")
        self.tool_approval = ToolApprovalFactory(execution__agent=self.clerk, tool=self.tool)
        self.api_key = APIKeyFactory(organization=org, name=f"Portal {org.slug}")
        self.budget = BudgetFactory(organization=org, metric="cost", period="month", limit="500.00")
        self.membership = owner_user.memberships.get(organization=org)
        self.invitation = InvitationFactory(
            organization=org, email=f"newcomer@{org.slug}.example", invited_by=owner_user
        )
        # A release and its pending activation request, asked by the API key (a CI pipeline), so any
        # admin or owner may decide it.
        from agents.activation import activation_request_create
        from agents.services import release_create

        self.release = release_create(agent=self.agent, actor=None)
        self.activation_request = activation_request_create(
            agent=self.agent, release=self.release, actor=self.api_key, notes="Suite run passed."
        )
        self.audit_event = audit_record(
            organization=org,
            action="agent.update",
            actor=owner_user,
            obj=self.agent,
            before={"name": "VAT"},
            after={"name": self.agent.name},
        )

    def pages(self) -> dict[str, str]:
        """Every staff page that shows this organisation's objects (name → URL)."""
        a = self.agent.pk
        return {
            "agent-registry": "/admin/agents/agent/",
            "agent-detail": f"/admin/agents/agent/{a}/overview/",
            "agent-settings": f"/admin/agents/agent/{a}/change/",
            "persona-versions": f"/admin/agents/agent/{a}/personas/",
            "persona-diff": f"/admin/agents/agent/{a}/personas/?a={self.persona.version}&b={self.persona2.version}",
            "persona-editor": f"/admin/agents/agent/{a}/personas/{self.persona.pk}/edit/",
            "persona-new": f"/admin/agents/agent/{a}/personas/new/",
            "tool-assignments": f"/admin/agents/agent/{a}/assignments/tools/",
            "knowledge-assignments": f"/admin/agents/agent/{a}/assignments/knowledge/",
            "guardrail-assignments": f"/admin/agents/agent/{a}/assignments/guardrails/",
            "tool-registry": "/admin/tools/tool/",
            "tool-form": f"/admin/tools/tool/{self.tool.pk}/change/",
            "tool-test": f"/admin/tools/tool/{self.tool.pk}/test/",
            "knowledge-bases": "/admin/knowledge/knowledgebase/",
            "knowledge-base-settings": f"/admin/knowledge/knowledgebase/{self.kb.pk}/change/",
            "knowledge-base": f"/admin/knowledge/knowledgebase/{self.kb.pk}/documents/",
            "documents": "/admin/knowledge/document/",
            "document": f"/admin/knowledge/document/{self.document.pk}/change/",
            "retrieval-tester": "/admin/knowledge/knowledgebase/search/",
            "guardrails": "/admin/guardrails/guardrail/",
            "guardrail-form": f"/admin/guardrails/guardrail/{self.guardrail.pk}/change/",
            "guardrail-test": f"/admin/guardrails/guardrail/{self.guardrail.pk}/test/",
            "executions": "/admin/agents/execution/",
            "execution": f"/admin/agents/execution/{self.execution.pk}/change/",
            "feedback": "/admin/agents/feedback/",
            "conversations": "/admin/agents/conversation/",
            "conversation": f"/admin/agents/conversation/{self.conversation.pk}/change/",
            "learning-examples": "/admin/agents/learningexample/",
            "learning-example": f"/admin/agents/learningexample/{self.example.pk}/change/",
            "providers": "/admin/agents/modelprovider/",
            "provider": f"/admin/agents/modelprovider/{self.provider.pk}/change/",
            "budgets": "/admin/agents/budget/",
            "budget": f"/admin/agents/budget/{self.budget.pk}/change/",
            "tool-approvals": "/admin/tool-approvals/",
            "tool-approval": f"/admin/tool-approvals/{self.tool_approval.pk}/",
            "members": "/admin/tenancy/membership/",
            "member": f"/admin/tenancy/membership/{self.membership.pk}/change/",
            "invitations": "/admin/tenancy/invitation/",
            "invitation": f"/admin/tenancy/invitation/{self.invitation.pk}/change/",
            "invite": "/admin/tenancy/invitation/add/",
            "api-keys": "/admin/tenancy/apikey/",
            "api-key": f"/admin/tenancy/apikey/{self.api_key.pk}/change/",
            "organization": f"/admin/tenancy/organization/{self.org.pk}/change/",
            "audit-log": "/admin/audit/auditevent/",
            "audit-event": f"/admin/audit/auditevent/{self.audit_event.pk}/change/",
            "approvals": "/admin/approvals/",
            "guide": "/admin/guide/",
        }

    def object_pages(self) -> dict[str, str]:
        """The pages of single objects (another organisation's answer 404)."""
        return {name: url for name, url in self.pages().items() if any(c.isdigit() for c in url)}


@pytest.fixture
def world(org, owner):
    return World(org, owner)


@pytest.fixture
def other_world(other_org):
    other_owner = UserFactory(username="owner-other")
    MembershipFactory(user=other_owner, organization=other_org, role="owner")
    return World(other_org, other_owner)


@pytest.fixture
def owner_client(owner):
    return login(owner)
