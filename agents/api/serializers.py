"""Serializers of the agents API: lean shapes for reading, field checks for writing.

Writes go through ``agents.services`` from the viewsets; the serializers only validate and shape.
Related ids (provider, tool, knowledge base, guardrail, owner) are looked up inside the caller's
organisation, so another organisation's id is simply "not found".
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import (
    COST_UNITS_PER_CURRENCY,
    Agent,
    AgentGuardrail,
    AgentKnowledge,
    AgentTool,
    Budget,
    BudgetMetric,
    Conversation,
    Execution,
    ExecutionStep,
    Feedback,
    LearningExample,
    ModelProvider,
    Rating,
    period_bounds,
    to_units,
)
from agents.privacy import may_see_identifiers, shown_data, shown_text
from agents.runtime.serialize import pending_approval
from agents.selectors import budget_limits_nothing_for, budget_unpriced_agents
from guardrails.models import Guardrail
from knowledge.models import KnowledgeBase
from prisma_glow.api.tenancy import get_access
from prisma_glow.models import organization_q
from tools.api.serializers import HTTP_URL_PATTERN, JSONObjectField, PatternStringField
from tools.models import Tool


class OrganizationRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key resolved only among the caller's organisation's rows (and the rows its model
    shares with every organisation, such as built-in tools): ``prisma_glow.models.organization_q``."""

    def get_queryset(self):
        queryset = super().get_queryset()
        organization = self.context.get("organization")
        if organization is None:
            return queryset.none()
        return queryset.filter(organization_q(queryset.model, organization))


class MemberField(serializers.PrimaryKeyRelatedField):
    """A user id that must belong to a member of the caller's organisation."""

    def get_queryset(self):
        organization = self.context.get("organization")
        users = get_user_model().objects.all()
        return users.filter(memberships__organization=organization) if organization else users.none()


# --- Agents -----------------------------------------------------------------------------------


class AgentSerializer(serializers.ModelSerializer):
    """An agent. ``status`` changes through the activate / deprecate actions, not by editing."""

    slug = serializers.SlugField(
        max_length=80, required=False, allow_blank=True, help_text="Blank: derived from the name."
    )
    owner = MemberField(required=False, allow_null=True, help_text="A member of the organisation.")
    # A method, not ``source="owner.username"`` with a default: DRF skips a source field's default
    # on a partial update, so a PATCH answered without this required key (found by schemathesis).
    owner_username = serializers.SerializerMethodField()
    provider = OrganizationRelatedField(
        queryset=ModelProvider.objects.all(),
        required=False,
        allow_null=True,
        help_text="Blank: the organisation's default provider, or the offline engine.",
    )
    active_persona_version = serializers.IntegerField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "slug",
            "type",
            "status",
            "description",
            "owner",
            "owner_username",
            "provider",
            "model",
            "max_tool_rounds",
            "timeout_seconds",
            "active_persona_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "created_at", "updated_at"]

    def get_owner_username(self, agent) -> str | None:
        return agent.owner.username if agent.owner_id else None


class AgentCloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, help_text="The new agent's name.")
    slug = serializers.SlugField(max_length=80, required=False, allow_blank=True, default="")


# --- Assignments ------------------------------------------------------------------------------


class AssignmentSerializer(serializers.ModelSerializer):
    """What the three assignment serializers share: ``order`` (blank on create: appended last) and
    a target (``target_field``) that an update may repeat but not change."""

    target_field = ""
    order = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647)

    def validate(self, attrs):
        target = attrs.get(self.target_field)
        if (
            self.instance is not None
            and target is not None
            and target.pk != getattr(self.instance, f"{self.target_field}_id")
        ):
            # Well formed, but clashing with the stored assignment: 409, like a budget's fixed fields.
            raise serializers.ValidationError(
                {self.target_field: ["An assignment cannot change its target; unassign and assign again."]},
                code="conflict",
            )
        return attrs


class AgentToolSerializer(AssignmentSerializer):
    """A tool assigned to an agent. ``order`` blank on create: appended last."""

    target_field = "tool"
    tool = OrganizationRelatedField(queryset=Tool.objects.all())
    tool_name = serializers.CharField(source="tool.name", read_only=True)
    tool_slug = serializers.CharField(source="tool.slug", read_only=True)
    settings = JSONObjectField(required=False)

    class Meta:
        model = AgentTool
        fields = ["id", "tool", "tool_name", "tool_slug", "enabled", "order", "settings", "requires_approval"]
        extra_kwargs = {
            "requires_approval": {
                "help_text": "Whether calls through this assignment wait for a person's approval; null "
                "(the default) follows the tool's own `requires_approval`."
            }
        }


class AgentKnowledgeSerializer(AssignmentSerializer):
    """A knowledge base assigned to an agent, with its retrieval settings."""

    target_field = "knowledge_base"
    knowledge_base = OrganizationRelatedField(queryset=KnowledgeBase.objects.all())
    knowledge_base_name = serializers.CharField(source="knowledge_base.name", read_only=True)

    class Meta:
        model = AgentKnowledge
        fields = ["id", "knowledge_base", "knowledge_base_name", "enabled", "order", "top_k", "min_score"]
        extra_kwargs = {"min_score": {"max_value": 1e6}}


class AgentGuardrailSerializer(AssignmentSerializer):
    """A guardrail assigned to an agent; enabled guardrails run in ``order``."""

    target_field = "guardrail"
    guardrail = OrganizationRelatedField(queryset=Guardrail.objects.all())
    guardrail_name = serializers.CharField(source="guardrail.name", read_only=True)
    guardrail_kind = serializers.CharField(source="guardrail.kind", read_only=True)

    class Meta:
        model = AgentGuardrail
        fields = ["id", "guardrail", "guardrail_name", "guardrail_kind", "enabled", "order"]


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "uniqueItems": True,
        "maxItems": 1000,
    }
)
class IdListField(serializers.ListField):
    """A list of distinct ids."""

    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), max_length=1000, **kwargs
        )

    def to_internal_value(self, data):
        ids = super().to_internal_value(data)
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("Each id may appear only once.")
        return ids


class ReorderSerializer(serializers.Serializer):
    assignments = IdListField(help_text="Every assignment id of the agent, once each, in the new order.")


# --- Providers --------------------------------------------------------------------------------


class ModelProviderSerializer(serializers.ModelSerializer):
    """A model provider. ``api_key`` is write-only: send it to set or replace the key (``""`` clears
    it); responses only say ``has_api_key``."""

    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=4000, trim_whitespace=True
    )
    has_api_key = serializers.SerializerMethodField()
    base_url = PatternStringField(
        rf"^(?:{HTTP_URL_PATTERN})?$",
        url=True,
        required=False,
        error_messages={"invalid": "Enter a valid http(s) URL."},
        allow_blank=True,
        max_length=500,
        help_text="The endpoint, e.g. http://127.0.0.1:11434/v1; blank for an OpenAI-compatible provider: "
        "https://api.openai.com/v1.",
    )

    class Meta:
        model = ModelProvider
        fields = [
            "id",
            "name",
            "kind",
            "base_url",
            "api_key",
            "has_api_key",
            "default_model",
            "price_input_per_1k",
            "price_output_per_1k",
            "timeout_seconds",
            "max_retries",
            "is_default",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "price_input_per_1k": {"min_value": 0},
            "price_output_per_1k": {"min_value": 0},
        }

    def get_has_api_key(self, obj: ModelProvider) -> bool:
        return bool(obj.api_key)


# --- Executions -------------------------------------------------------------------------------


class ExecutionStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExecutionStep
        fields = ["ordinal", "kind", "name", "status", "input", "output", "duration_ms", "started_at"]
        extra_kwargs = {
            "status": {
                "help_text": "`blocked`: a guardrail ended the run. `dropped` / `flagged`: a retrieval "
                "guardrail withheld passages from the model or let them through marked as suspect (tools "
                "withheld); the run went on. `warned`: a check triggered without consequence."
            }
        }


class IdentifiersMixin:
    """Client identifiers shown as ``agents.privacy`` rules: in full only on an object opened on its
    own (``opened_alone``: the serializer's own, or the view's ``opened_alone`` context) for an
    authorised caller, masked everywhere else (lists)."""

    opened_alone = False
    #: The text fields that may hold identifiers, and the structures (trace, citations).
    identifier_fields: tuple[str, ...] = ()
    identifier_structures: tuple[str, ...] = ()

    def sees_identifiers(self, obj) -> bool:
        request = self.context.get("request")
        opened_alone = self.opened_alone or self.context.get("opened_alone", False)
        if request is None or not opened_alone:
            return False
        return may_see_identifiers(get_access(request), obj, opened_alone=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        visible = self.sees_identifiers(instance)
        for name in self.identifier_fields:
            if name in data:
                data[name] = shown_text(instance, data[name], visible=visible)
        for name in self.identifier_structures:
            if name in data:
                data[name] = shown_data(instance, data[name], visible=visible)
        return data


class ExecutionSerializer(IdentifiersMixin, serializers.ModelSerializer):
    """An execution as listed: the answer, status, cost and latency (the trace is on the detail).
    Client identifiers in the input, answer and error are masked (``DE89 •••• 3000``)."""

    identifier_fields = ("input", "output", "error")
    identifier_structures = ("citations",)

    agent_name = serializers.CharField(source="agent.name", read_only=True)
    persona_version = serializers.IntegerField(source="persona.version", read_only=True, default=None)
    release = serializers.IntegerField(
        source="release.number",
        read_only=True,
        default=None,
        help_text="The release number the run ran; null for a test run of the draft (and older runs).",
    )
    release_hash = serializers.CharField(
        source="release.content_hash",
        read_only=True,
        default=None,
        help_text="The SHA-256 of that release's content.",
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "agent",
            "agent_name",
            "persona",
            "persona_version",
            "release",
            "release_hash",
            "as_of",
            "replay_of",
            "provider",
            "provider_kind",
            "model",
            "input",
            "output",
            "status",
            "error",
            "tokens_in",
            "tokens_out",
            "cost",
            "latency_ms",
            "source",
            "is_test",
            "actor_user",
            "actor_api_key",
            "citations",
            "conversation",
            "turn",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "conversation": {"help_text": "The conversation this run is a turn of (null for older runs)."},
            "turn": {"help_text": "The run's place in its conversation: 1, 2, …"},
            "replay_of": {"help_text": "The execution this run replays (`POST /executions/{id}/replay/`)."},
        }


class ExecutionDetailSerializer(ExecutionSerializer):
    """An execution with its full trace, step by step. Client identifiers in full for an editor (or
    above) and for the run's own requester; masked for everyone else (docs/security.md)."""

    opened_alone = True
    identifier_structures = ("citations", "steps", "tool_approval")

    steps = ExecutionStepSerializer(many=True, read_only=True)
    tool_approval = serializers.SerializerMethodField(
        help_text="While the run is `awaiting_approval`: the tool call it waits on (its id for "
        "`/tool-approvals/{id}/approve/` and `…/refuse/`, the tool, the arguments as the model wrote "
        "them, when it expires); null otherwise."
    )

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "steps", "tool_approval"]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "id": {"type": "integer"},
                "tool": {"type": "integer", "nullable": True},
                "tool_name": {"type": "string"},
                "arguments": {"type": "object"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_tool_approval(self, obj: Execution) -> dict | None:
        return pending_approval(obj)


# --- Conversations ----------------------------------------------------------------------------


class ConversationTurnSerializer(ExecutionSerializer):
    """A turn of a conversation: the execution as listed. (Its own name: the turns are page-numbered,
    the executions list is cursor-paginated, and each page shape is a schema component of its own.)"""


class ConversationSerializer(serializers.ModelSerializer):
    """A conversation with one agent; its turns are executions (``/conversations/{id}/turns/``)."""

    agent_name = serializers.CharField(source="agent.name", read_only=True)
    turn_count = serializers.IntegerField(read_only=True, help_text="Turns so far, whatever their status.")
    last_turn_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "agent",
            "agent_name",
            "title",
            "started_by_user",
            "started_by_api_key",
            "turn_count",
            "last_turn_at",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "title": {
                "help_text": "The first question, with every client identifier masked (`DE89 •••• 3000`)."
            }
        }


class FeedbackSerializer(serializers.ModelSerializer):
    """A thumbs up (1) or thumbs down (-1) on an execution; a thumbs down with a ``correction`` proposes a learning example."""

    rating = serializers.ChoiceField(choices=Rating.choices)
    learning_example = serializers.SerializerMethodField()

    class Meta:
        model = Feedback
        fields = ["id", "execution", "rating", "comment", "correction", "learning_example", "created_at"]
        read_only_fields = ["execution", "created_at"]
        extra_kwargs = {"comment": {"max_length": 10000}, "correction": {"max_length": 100000}}

    def get_learning_example(self, obj: Feedback) -> int | None:
        example = obj.learning_examples.order_by("id").first() if obj.pk else None
        return example.pk if example else None


# --- Learning examples ------------------------------------------------------------------------


class LearningExampleSerializer(IdentifiersMixin, serializers.ModelSerializer):
    """An input and its ideal answer. New examples are proposed; approve them to use them.

    Stored with client identifiers as placeholders; an example opened on its own shows their values to
    an editor (or above) and to its author, lists show them masked (docs/security.md). Write the real
    values: they are redacted again on save."""

    identifier_fields = ("input", "output")

    agent = OrganizationRelatedField(queryset=Agent.objects.all())

    class Meta:
        model = LearningExample
        fields = [
            "id",
            "agent",
            "input",
            "output",
            "status",
            "source_feedback",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "source_feedback", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"input": {"max_length": 100000}, "output": {"max_length": 100000}}

    def validate_agent(self, agent):
        if self.instance is not None and agent.pk != self.instance.agent_id:
            raise serializers.ValidationError("A learning example cannot move to another agent.")
        return agent


# --- Budgets ----------------------------------------------------------------------------------


def budget_amount(metric: str, units: int) -> str:
    """Counting units as the API shows amounts: whole tokens ("12000"), or cost with six decimals."""
    if metric == BudgetMetric.TOKENS:
        return str(units)
    return f"{Decimal(units) / COST_UNITS_PER_CURRENCY:.6f}"


class BudgetSerializer(serializers.ModelSerializer):
    """A budget and what its current period has consumed. ``limit`` is tokens (a whole number) or cost
    in the accounting currency of the providers' prices; ``agent`` null is the whole organisation.
    ``used`` (settled), ``reserved`` (held by runs in progress) and ``remaining`` are in the same unit,
    for the period from ``period_start`` to ``resets_at``."""

    agent = OrganizationRelatedField(
        queryset=Agent.objects.all(),
        required=False,
        allow_null=True,
        help_text="The agent whose runs it limits; null (or left out): every run of the organisation.",
    )
    limit = serializers.DecimalField(
        max_digits=18,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        max_value=Decimal("999999999999.999999"),
        error_messages={"min_value": "The limit must be greater than zero."},
        help_text="Tokens (a whole number), or cost in the providers' currency.",
    )
    used = serializers.SerializerMethodField(help_text="Settled in the current period.")
    reserved = serializers.SerializerMethodField(help_text="Held by runs in progress.")
    remaining = serializers.SerializerMethodField(help_text="limit − used − reserved (0 at least).")
    period_start = serializers.SerializerMethodField()
    resets_at = serializers.SerializerMethodField(help_text="When the current period ends.")
    limits_nothing_for = serializers.SerializerMethodField(
        help_text="A cost budget: the names of the agents it cannot limit, because their provider has no "
        "prices (or they run on the offline engine), so their calls cost 0. Empty when it limits every "
        "agent it applies to (and for a token budget). Set the provider's prices, or add a token budget."
    )

    # The schema states the one rule between fields (prisma_glow.api.schema.AutoSchema): a tokens
    # budget's limit is a whole number of tokens (a string without decimals, or a JSON integer, whose
    # bounds the field's own schema gives); a cost budget's may have six decimals.
    request_schema_any_of = [
        {
            "properties": {
                # A pattern, not an enum: drf-spectacular's enum hook would name it BudgetMetricEnum.
                "metric": {"type": "string", "pattern": f"^{BudgetMetric.TOKENS.value}$"},
                "limit": {
                    "oneOf": [
                        {"type": "string", "pattern": r"^0*[1-9]\d{0,11}(?:\.0{0,6})?$"},
                        {"type": "integer"},
                    ]
                },
            }
        },
        {"properties": {"metric": {"type": "string", "pattern": f"^{BudgetMetric.COST.value}$"}}},
    ]

    class Meta:
        model = Budget
        fields = [
            "id",
            "agent",
            "metric",
            "period",
            "limit",
            "used",
            "reserved",
            "remaining",
            "period_start",
            "resets_at",
            "limits_nothing_for",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # One budget per organisation (or agent), metric and period is the service's rule (409), not a
        # serializer's (which would make ``agent`` required).
        validators: list = []

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["limit"] = budget_amount(instance.metric, to_units(instance.metric, instance.limit))
        return data

    def _units(self, obj: Budget) -> tuple[int, int]:
        return getattr(obj, "current_used", 0) or 0, getattr(obj, "current_reserved", 0) or 0

    @extend_schema_field({"type": "string", "example": "0.950000"})
    def get_used(self, obj: Budget) -> str:
        return budget_amount(obj.metric, self._units(obj)[0])

    @extend_schema_field({"type": "string", "example": "0.040000"})
    def get_reserved(self, obj: Budget) -> str:
        return budget_amount(obj.metric, self._units(obj)[1])

    @extend_schema_field({"type": "string", "example": "0.010000"})
    def get_remaining(self, obj: Budget) -> str:
        used, reserved = self._units(obj)
        return budget_amount(obj.metric, max(0, obj.limit_units - used - reserved))

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_period_start(self, obj: Budget) -> str:
        return serializers.DateTimeField().to_representation(period_bounds(obj.period)[0])

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_resets_at(self, obj: Budget) -> str:
        return serializers.DateTimeField().to_representation(period_bounds(obj.period)[1])

    @extend_schema_field({"type": "array", "items": {"type": "string"}, "example": ["Local drafting"]})
    def get_limits_nothing_for(self, obj: Budget) -> list[str]:
        # Read once per response (a list shares its serializer's context).
        unpriced = self.context.setdefault("_budget_unpriced_agents", {})
        if obj.organization_id not in unpriced:
            unpriced[obj.organization_id] = budget_unpriced_agents(organization_id=obj.organization_id)
        return budget_limits_nothing_for(obj, unpriced[obj.organization_id])


class ActivateRequestSerializer(serializers.Serializer):
    """Which release of the agent to put live (default: its newest), and why (for the approver)."""

    release = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**31 - 1, help_text="A release number."
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, max_length=5000, help_text="Why (shown to the approver)."
    )


class ReplayRequestSerializer(serializers.Serializer):
    """Which release of the execution's agent the replay runs (default: the active release)."""

    release = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="A release number of the execution's agent. Default: the agent's active release.",
    )
