"""factory-boy factories, one per model. Related objects share one organisation by default."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_otp.oath import totp

from agents.models import (
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentTool,
    Budget,
    Conversation,
    Execution,
    ExecutionStep,
    Feedback,
    LearningExample,
    ModelProvider,
    ToolApproval,
)
from agents.services import agent_activate, release_create
from guardrails.models import Guardrail
from knowledge.models import Chunk, Document, KnowledgeBase
from personas.models import Persona
from prisma_glow.accounts.models import AuthenticatorDevice, BackupCodeDevice
from prisma_glow.tenancy.models import APIKey, Invitation, Membership, Organization
from tools.models import Tool


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Firm {n}")
    slug = factory.Sequence(lambda n: f"firm-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    """An enrolled authenticator app (``AuthenticatorDevice``); ``totp_code(device)`` is the code it
    shows now."""

    class Meta:
        model = AuthenticatorDevice

    user = factory.SubFactory(UserFactory)
    name = "Authenticator app"
    confirmed = True


def totp_code(device: AuthenticatorDevice, *, drift: int = 0) -> str:
    """The six digits ``device``'s app shows now (``drift`` steps later or earlier)."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, drift):06d}"


def backup_codes(user, *, count: int = 3) -> list[str]:
    """Give ``user`` one-time backup codes (a ``BackupCodeDevice``); returns them in clear."""
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    return device.issue(count)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = "editor"


class APIKeyFactory(factory.django.DjangoModelFactory):
    """Creates a real key; its full value (``pg_<prefix>.<secret>``) is in ``key.plaintext``."""

    class Meta:
        model = APIKey

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Key {n}")
    scopes = factory.LazyFunction(lambda: ["read", "write", "execute"])
    # Every key expires (tenancy.services.api_key_expiry); the longest lifetime allowed by default.
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=settings.API_KEY_MAX_DAYS))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        full, prefix, hashed = APIKey.generate()
        obj = super()._create(model_class, *args, prefix=prefix, hashed_secret=hashed, **kwargs)
        obj.plaintext = full
        return obj


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation (no e-mail sent); its link's token is in ``invitation.token``."""

    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@firm.example")
    role = "editor"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=settings.INVITATION_HOURS))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        token, token_hash = Invitation.generate()
        obj = super()._create(model_class, *args, token_hash=token_hash, **kwargs)
        obj.token = token
        return obj


class ModelProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelProvider

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Provider {n}")
    kind = "offline"


class BudgetFactory(factory.django.DjangoModelFactory):
    """The organisation's daily cost budget unless told otherwise (``agent=…``, ``metric=…``)."""

    class Meta:
        model = Budget

    organization = factory.SubFactory(OrganizationFactory)
    agent = None
    metric = "cost"
    period = "day"
    limit = factory.Sequence(lambda n: f"{10 + n}.00")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    slug = factory.Sequence(lambda n: f"agent-{n}")
    type = "tax"
    status = "draft"
    description = "Answers questions from the firm's guidance."


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Persona

    agent = factory.SubFactory(AgentFactory)
    version = factory.LazyAttribute(lambda o: o.agent.personas.count() + 1)
    name = "Default"
    system_prompt = "You are a careful assistant of the firm. Cite the firm's guidance."
    is_active = False


class ToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tool

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Tool {n}")
    slug = factory.Sequence(lambda n: f"tool-{n}")
    kind = "http"
    url_template = "https://tools.example.com/run"
    input_schema = factory.LazyFunction(
        lambda: {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    )


class GuardrailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Guardrail

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Guardrail {n}")
    kind = "keywords"
    action = "block"
    config = factory.LazyFunction(lambda: {"keywords": ["forbidden"]})


class KnowledgeBaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeBase

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Knowledge base {n}")


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    knowledge_base = factory.SubFactory(KnowledgeBaseFactory)
    title = factory.Sequence(lambda n: f"Document {n}")
    source = "text"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"doc-{n}".encode()).hexdigest())
    mime_type = "text/plain"
    status = "ready"


class ChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chunk

    document = factory.SubFactory(DocumentFactory)
    ordinal = factory.Sequence(lambda n: n)
    text = "The reverse charge applies to B2B services supplied across EU borders."
    token_count = 12


class AgentToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentTool

    agent = factory.SubFactory(AgentFactory)
    tool = factory.SubFactory(ToolFactory, organization=factory.SelfAttribute("..agent.organization"))


class AgentKnowledgeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentKnowledge

    agent = factory.SubFactory(AgentFactory)
    knowledge_base = factory.SubFactory(
        KnowledgeBaseFactory, organization=factory.SelfAttribute("..agent.organization")
    )


class AgentGuardrailFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentGuardrail

    agent = factory.SubFactory(AgentFactory)
    guardrail = factory.SubFactory(
        GuardrailFactory, organization=factory.SelfAttribute("..agent.organization")
    )


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    agent = factory.SubFactory(AgentFactory)
    organization = factory.SelfAttribute("agent.organization")
    title = "What is the VAT on €1,000 at 19%?"


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    agent = factory.SubFactory(AgentFactory)
    organization = factory.SelfAttribute("agent.organization")
    input = "What is the VAT on €1,000 at 19%?"
    output = "The VAT is €190.00."
    status = "completed"
    source = "api"
    tokens_in = 42
    tokens_out = 12
    latency_ms = 35
    finished_at = factory.LazyFunction(timezone.now)


def _paused_state() -> str:
    from agents.runtime.approvals import dump_state

    return dump_state(
        messages=[{"role": "user", "content": "Pay the invoice."}],
        question="Pay the invoice.",
        rounds=1,
        answer="",
        pending=[],
        passages=[],
        redactions={},
        found={},
        masked={},
        tokens_in=0,
        tokens_out=0,
        cost=None,
        elapsed_ms=5,
        next_ordinal=1,
        tools_withheld="",
    )


class ToolApprovalFactory(factory.django.DjangoModelFactory):
    """A pending tool call of a run paused for it (its state a minimal valid one)."""

    class Meta:
        model = ToolApproval

    execution = factory.SubFactory(
        ExecutionFactory,
        status="awaiting_approval",
        output="",
        finished_at=None,
        input="Pay the invoice.",
        persona=factory.SubFactory(PersonaFactory, agent=factory.SelfAttribute("..agent"), is_active=True),
    )
    tool = factory.SubFactory(ToolFactory, organization=factory.SelfAttribute("..execution.organization"))
    tool_name = factory.SelfAttribute("tool.name")
    call_id = "call_0"
    arguments = factory.LazyFunction(lambda: {"q": "invoice 42"})
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))
    state = factory.LazyFunction(_paused_state)


class ExecutionStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionStep

    execution = factory.SubFactory(ExecutionFactory)
    ordinal = factory.Sequence(lambda n: n)
    kind = "guardrail"
    name = "PII"
    started_at = factory.LazyFunction(timezone.now)
    duration_ms = 0.4


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    execution = factory.SubFactory(ExecutionFactory)
    rating = 1


class LearningExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LearningExample

    agent = factory.SubFactory(AgentFactory)
    organization = factory.SelfAttribute("agent.organization")
    input = "Is a German consultant's invoice to a French company subject to German VAT?"
    output = "No: the reverse charge applies; the French customer accounts for the VAT."


def release_now(agent, *, notes: str = "", activate: bool = True):
    """Release ``agent``'s current configuration (``agents.services.release_create``) and, by default,
    make it the active release, the agent active: what an API run then runs."""
    release = release_create(agent=agent, actor=None, notes=notes)
    if activate:
        agent_activate(agent=agent, actor=None, release=release)
        agent.refresh_from_db()
    return release
