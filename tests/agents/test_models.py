"""Agent, provider, assignment, execution and learning invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import (
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentTool,
    Execution,
    ExecutionStep,
    Feedback,
    LearningExample,
    ModelProvider,
)
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    AgentKnowledgeFactory,
    AgentToolFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    LearningExampleFactory,
    ModelProviderFactory,
    OrganizationFactory,
)
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid

pytestmark = pytest.mark.django_db


# --- ModelProvider ---------------------------------------------------------------------------


def test_provider_name_is_unique_per_organization(org, other_org):
    """Two providers of one organisation cannot share a name; another organisation may reuse it."""
    ModelProviderFactory(organization=org, name="Offline")
    assert_db_rejects(lambda: ModelProvider.objects.create(organization=org, name="Offline"))
    assert_conflict(
        ModelProvider(organization=org, name="Offline"),
        "A provider with this name already exists in this organisation.",
        field="name",
    )
    ModelProvider(organization=other_org, name="Offline").full_clean()


def test_only_one_default_provider_per_organization(org, other_org):
    """At most one provider is the organisation's default; non-default providers are unlimited."""
    ModelProviderFactory(organization=org, is_default=True)
    ModelProviderFactory(organization=org, is_default=False)
    assert_db_rejects(lambda: ModelProvider.objects.create(organization=org, name="Second", is_default=True))
    assert_conflict(
        ModelProvider(organization=org, name="Second", is_default=True),
        "Only one provider can be the organisation's default.",
        field="is_default",
    )
    ModelProviderFactory(organization=other_org, is_default=True)


@pytest.mark.parametrize("field", ["price_input_per_1k", "price_output_per_1k"])
def test_provider_prices_cannot_be_negative(org, field):
    """A negative price per 1k tokens is refused."""
    assert_db_rejects(
        lambda: ModelProvider.objects.create(organization=org, name="P", **{field: Decimal("-0.01")})
    )
    assert_invalid(
        ModelProvider(organization=org, name="P", **{field: Decimal("-0.01")}), "Prices cannot be negative."
    )


def test_provider_kind_must_be_known(org):
    """Only offline and openai_compatible providers exist."""
    assert_db_rejects(lambda: ModelProvider.objects.create(organization=org, name="P", kind="anthropic"))
    assert_invalid(
        ModelProvider(organization=org, name="P", kind="anthropic"),
        "Value 'anthropic' is not a valid choice.",
        field="kind",
    )


def test_remote_provider_needs_a_base_url(org, settings):
    """An OpenAI-compatible provider without a base URL is refused; an offline one needs none."""
    settings.PROVIDER_ALLOWED_HOSTS = ["127.0.0.1:11434"]
    assert_db_rejects(
        lambda: ModelProvider.objects.create(
            organization=org, name="P", kind="openai_compatible", base_url=""
        )
    )
    assert_invalid(
        ModelProvider(organization=org, name="P", kind="openai_compatible", base_url=""),
        "An OpenAI-compatible provider needs a base URL.",
    )
    ModelProvider(
        organization=org, name="P", kind="openai_compatible", base_url="http://127.0.0.1:11434/v1"
    ).full_clean()
    ModelProvider(organization=org, name="Q", kind="offline").full_clean()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_seconds", 0, "greater than or equal to 1"),
        ("timeout_seconds", 601, "less than or equal to 600"),
        ("max_retries", 11, "less than or equal to 10"),
        ("base_url", "not a url", "Enter a valid URL."),
    ],
)
def test_provider_field_bounds(org, field, value, message):
    """Timeouts, retries and URLs are validated with a readable message."""
    assert_invalid(ModelProvider(organization=org, name="P", **{field: value}), message, field=field)


def test_provider_api_key_is_encrypted_at_rest(org):
    """The API key column holds ciphertext; the model attribute holds the key."""
    from django.db import connection

    provider = ModelProviderFactory(
        organization=org,
        kind="openai_compatible",
        base_url="https://llm.example.com/v1",
        api_key="sk-live-123",
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {ModelProvider._meta.db_table} WHERE id = %s", [provider.pk])
        stored = cursor.fetchone()[0]
    assert stored and "sk-live-123" not in stored
    assert ModelProvider.objects.get(pk=provider.pk).api_key == "sk-live-123"


# --- Agent -------------------------------------------------------------------------------------


def test_agent_slug_is_unique_per_organization(org, other_org):
    """Slugs are unique within an organisation, not across organisations."""
    AgentFactory(organization=org, slug="vat-adviser", name="VAT adviser")
    assert_db_rejects(lambda: Agent.objects.create(organization=org, slug="vat-adviser", name="Other"))
    assert_conflict(
        Agent(organization=org, slug="vat-adviser", name="Other"),
        "An agent with this slug already exists in this organisation.",
        field="slug",
    )
    Agent(organization=other_org, slug="vat-adviser", name="VAT adviser").full_clean()


def test_agent_name_is_unique_per_organization(org):
    """Two agents of one organisation cannot share a name."""
    AgentFactory(organization=org, slug="vat-adviser", name="VAT helper")
    assert_db_rejects(lambda: Agent.objects.create(organization=org, slug="vat-2", name="VAT helper"))
    assert_conflict(
        Agent(organization=org, slug="vat-2", name="VAT helper"),
        "An agent with this name already exists in this organisation.",
        field="name",
    )


@pytest.mark.parametrize(("field", "value"), [("type", "legal"), ("status", "archived")])
def test_agent_type_and_status_must_be_known(org, field, value):
    """Type is tax/audit/advisory/general; status is draft/active/deprecated."""
    assert_db_rejects(lambda: Agent.objects.create(organization=org, slug="a", name="A", **{field: value}))
    assert_invalid(
        Agent(organization=org, slug="a", name="A", **{field: value}),
        f"Value '{value}' is not a valid choice.",
        field=field,
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_tool_rounds", 21, "less than or equal to 20"),
        ("timeout_seconds", 0, "greater than or equal to 1"),
        ("timeout_seconds", 901, "less than or equal to 900"),
        ("slug", "VAT adviser!", "valid"),
    ],
)
def test_agent_field_bounds(org, field, value, message):
    """Tool rounds, timeouts and slugs are validated with a readable message."""
    assert_invalid(Agent(organization=org, **{"slug": "a", "name": "A", field: value}), message, field=field)


def test_provider_in_use_by_an_agent_cannot_be_deleted(org):
    """An agent's provider is protected: remove it from the agents first."""
    from django.db import transaction
    from django.db.models import ProtectedError

    provider = ModelProviderFactory(organization=org)
    AgentFactory(organization=org, provider=provider)
    with pytest.raises(ProtectedError), transaction.atomic():
        provider.delete()


# --- Assignments -------------------------------------------------------------------------------


def test_tool_assigned_once_per_agent():
    """The same tool cannot be assigned twice to one agent."""
    assignment = AgentToolFactory()
    assert_db_rejects(lambda: AgentTool.objects.create(agent=assignment.agent, tool=assignment.tool))
    assert_conflict(
        AgentTool(agent=assignment.agent, tool=assignment.tool),
        "This tool is already assigned to the agent.",
        field="tool",
    )


def test_knowledge_base_assigned_once_per_agent():
    """The same knowledge base cannot be assigned twice to one agent."""
    a = AgentKnowledgeFactory()
    assert_db_rejects(lambda: AgentKnowledge.objects.create(agent=a.agent, knowledge_base=a.knowledge_base))
    assert_conflict(
        AgentKnowledge(agent=a.agent, knowledge_base=a.knowledge_base),
        "This knowledge base is already assigned to the agent.",
        field="knowledge_base",
    )


def test_guardrail_assigned_once_per_agent():
    """The same guardrail cannot be assigned twice to one agent."""
    a = AgentGuardrailFactory()
    assert_db_rejects(lambda: AgentGuardrail.objects.create(agent=a.agent, guardrail=a.guardrail))
    assert_conflict(
        AgentGuardrail(agent=a.agent, guardrail=a.guardrail),
        "This guardrail is already assigned to the agent.",
        field="guardrail",
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"top_k": 0}, "top_k", "greater than or equal to 1"),
        ({"top_k": 51}, "top_k", "less than or equal to 50"),
        ({"min_score": -0.1}, "min_score", "greater than or equal to 0"),
    ],
)
def test_knowledge_assignment_retrieval_settings(values, field, message):
    """top_k is 1–50 and the minimum score is not negative, in the database and in full_clean."""
    a = AgentKnowledgeFactory()
    a.delete()
    assert_db_rejects(
        lambda: AgentKnowledge.objects.create(agent=a.agent, knowledge_base=a.knowledge_base, **values)
    )
    assert_invalid(
        AgentKnowledge(agent=a.agent, knowledge_base=a.knowledge_base, **values), message, field=field
    )


# --- Executions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"status": "paused"}, "status", "Value 'paused' is not a valid choice."),
        ({"source": "email"}, "source", "Value 'email' is not a valid choice."),
        ({"cost": Decimal("-1")}, None, None),
    ],
)
def test_execution_invariants(org, values, field, message):
    """Status and source are known values; cost is never negative."""
    agent = AgentFactory(organization=org)
    assert_db_rejects(lambda: Execution.objects.create(organization=org, agent=agent, input="q", **values))
    if field:
        assert_invalid(Execution(organization=org, agent=agent, input="q", **values), message, field=field)


def test_execution_tokens_are_not_negative(org):
    """Token counts are unsigned in the database."""
    agent = AgentFactory(organization=org)
    assert_db_rejects(
        lambda: Execution.objects.create(organization=org, agent=agent, input="q", tokens_in=-1)
    )


def test_execution_redactions_are_encrypted(org):
    """The placeholder → original mapping is stored encrypted."""
    from django.db import connection

    execution = ExecutionFactory(
        agent=AgentFactory(organization=org), redactions='{"[IBAN_1]": "DE89370400440532013000"}'
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT redactions FROM {Execution._meta.db_table} WHERE id = %s", [execution.pk])
        assert "DE8937" not in cursor.fetchone()[0]
    assert "DE89370400440532013000" in Execution.objects.get(pk=execution.pk).redactions


def test_step_ordinal_unique_per_execution():
    """Each step of an execution has its own ordinal."""
    step = ExecutionStepFactory()
    assert_db_rejects(
        lambda: ExecutionStep.objects.create(
            execution=step.execution,
            ordinal=step.ordinal,
            kind="guardrail",
            name="x",
            started_at=timezone.now(),
        )
    )


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"kind": "thinking"}, "kind", "Value 'thinking' is not a valid choice."),
        ({"duration_ms": -1.0}, "duration_ms", "greater than or equal to 0"),
        ({"status": "skipped"}, "status", "Value 'skipped' is not a valid choice."),
    ],
)
def test_step_kind_and_duration(values, field, message):
    """A step is a guardrail, retrieval, model or tool call with a known status; its duration is not negative."""
    execution = ExecutionFactory()
    base = {
        "execution": execution,
        "ordinal": 1,
        "name": "x",
        "started_at": timezone.now(),
        "kind": "retrieval",
    }
    assert_db_rejects(lambda: ExecutionStep.objects.create(**{**base, **values}))
    assert_invalid(ExecutionStep(**{**base, **values}), message, field=field)


# --- Learning ---------------------------------------------------------------------------------


def test_feedback_rating_is_up_or_down():
    """A rating is -1 or 1; zero or five stars are refused."""
    execution = ExecutionFactory()
    for rating in (0, 5):
        assert_db_rejects(lambda rating=rating: Feedback.objects.create(execution=execution, rating=rating))
        assert_invalid(Feedback(execution=execution, rating=rating), "is not a valid choice", field="rating")
    Feedback(execution=execution, rating=-1, correction="The customer accounts for the VAT.").full_clean()


def test_learning_example_status_must_be_known():
    """Examples are proposed, approved or rejected."""
    example = LearningExampleFactory()
    assert_db_rejects(
        lambda: LearningExample.objects.create(
            organization=example.organization, agent=example.agent, input="q", output="a", status="draft"
        )
    )
    example.status = "draft"
    assert_invalid(example, "Value 'draft' is not a valid choice.", field="status")


def test_same_names_are_fine_in_another_organization():
    """Uniqueness is per organisation: a second firm may use the same agent and provider names."""
    first, second = OrganizationFactory(), OrganizationFactory()
    for org in (first, second):
        ModelProviderFactory(organization=org, name="Offline", is_default=True)
        AgentFactory(organization=org, name="VAT adviser", slug="vat-adviser")
    assert Agent.objects.filter(slug="vat-adviser").count() == 2
