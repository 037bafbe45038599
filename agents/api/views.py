"""``/api/v1/``: agents (+ activate, deprecate, clone), their tool / knowledge / guardrail
assignments, model providers, executions (+ feedback), conversations (+ their turns) and learning
examples.

The viewsets are thin: scoping comes from ``OrganizationScopedViewSet``, writes go through
``agents.services`` (audited), and querysets load related rows up front so a list costs the same
number of queries whatever its length.
"""

from __future__ import annotations

from django.db.models import Count, Max, OuterRef, Prefetch, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from agents import activation, services
from agents.api.activation_serializers import ActivationRequestSerializer, activation_requests
from agents.api.evidence import ReplayEvidenceMixin
from agents.api.execute import ExecuteActionMixin
from agents.api.filtersets import (
    AgentFilterSet,
    BudgetFilterSet,
    ConversationFilterSet,
    ExecutionFilterSet,
    LearningExampleFilterSet,
    ModelProviderFilterSet,
)
from agents.api.serializers import (
    ActivateRequestSerializer,
    AgentCloneSerializer,
    AgentGuardrailSerializer,
    AgentKnowledgeSerializer,
    AgentSerializer,
    AgentToolSerializer,
    BudgetSerializer,
    ConversationSerializer,
    ConversationTurnSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    FeedbackSerializer,
    LearningExampleSerializer,
    ModelProviderSerializer,
    ReorderSerializer,
)
from agents.models import (
    Agent,
    Budget,
    Conversation,
    Execution,
    ExecutionStep,
    LearningExample,
    ModelProvider,
)
from agents.privacy import SEARCH_REFUSED, sees_every_identifier
from agents.selectors import budgets_with_usage
from personas.models import Persona
from prisma_glow import policy
from prisma_glow.api.pagination import CreatedCursorPagination, StandardPagination
from prisma_glow.api.parsers import JSONParser
from prisma_glow.api.viewsets import OrganizationScopedMixin, OrganizationScopedViewSet

AGENT_PATH = OpenApiParameter(
    "agent_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The agent's id."
)


# --- Agents -----------------------------------------------------------------------------------


def _agents():
    active_version = Persona.objects.filter(agent=OuterRef("pk"), is_active=True).values("version")[:1]
    return Agent.objects.select_related("owner", "provider").annotate(
        active_persona_version=Subquery(active_version)
    )


@extend_schema_view(
    list=extend_schema(
        summary="List agents",
        description="Filter by `type`, `status` (repeatable) and `owner`; `search` looks in the name and "
        "description; `ordering` by name, type, status, created_at or updated_at (prefix `-` to reverse).",
    ),
    retrieve=extend_schema(summary="Retrieve an agent"),
    create=extend_schema(
        summary="Create an agent",
        description="Agents start as drafts. The slug is derived from the name when left out.",
        examples=[
            OpenApiExample(
                "VAT adviser",
                request_only=True,
                value={"name": "VAT adviser", "type": "tax", "description": "Answers EU VAT questions."},
            )
        ],
    ),
    update=extend_schema(summary="Replace an agent's settings"),
    partial_update=extend_schema(summary="Update an agent's settings"),
    destroy=extend_schema(
        summary="Delete an agent",
        description="Only an agent that has never run: one with executions answers 409 (deprecate it instead).",
    ),
)
class AgentViewSet(ExecuteActionMixin, OrganizationScopedViewSet):
    """The organisation's agents: draft → active → deprecated; ``execute`` comes from the runtime's mixin."""

    queryset = _agents()
    serializer_class = AgentSerializer
    parser_classes = [JSONParser]
    filterset_class = AgentFilterSet
    search_fields = ["name", "description"]
    ordering_fields = ["name", "type", "status", "created_at", "updated_at"]
    ordering = ["name", "id"]
    policy_resource = "agent"
    operations = {
        **ExecuteActionMixin.operations,
        "activate": "release.request",
        "deprecate": "agent.deprecate",
        "clone": "agent.add",
    }

    def _fresh(self, agent: Agent) -> Agent:
        return self.get_queryset().get(pk=agent.pk)

    def perform_create(self, serializer):
        agent = services.agent_create(
            organization=self.organization,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        serializer.instance = self._fresh(agent)

    def perform_update(self, serializer):
        agent = services.agent_update(
            agent=serializer.instance,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        serializer.instance = self._fresh(agent)

    def perform_destroy(self, instance):
        services.agent_delete(agent=instance, actor=self.access.actor)

    @extend_schema(
        summary="Request the activation of a release",
        description="Asks for a release of the agent to go live: `release` (a number; default the newest "
        "release) — the same as `POST /agents/{id}/activation-requests/`. Answers 202 with the pending "
        "activation request, which another admin or owner approves (four eyes). Where the organisation "
        "allows one-person activation and the caller is a signed-in admin or owner, the request is "
        "approved at once (the activation gates run; a second factor checked within "
        "PRISMA_GLOW_STEP_UP_MINUTES, 403 `step_up_required` until `POST /api/v1/auth/step-up/`) and the "
        "answer is 200 with the agent, now running that release (gates that refuse answer 409 and leave "
        "the request pending). Rolling back is requesting an earlier "
        "release. An agent without a release answers 409. An editor, or an API key with the `write` scope.",
        request=ActivateRequestSerializer,
        responses={200: AgentSerializer, 202: ActivationRequestSerializer},
        examples=[
            OpenApiExample(
                "Release 4", request_only=True, value={"release": 4, "notes": "Suite run 41 passed."}
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        agent = self.get_object()
        payload = ActivateRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        number = payload.validated_data.get("release")
        release = None if number is None else services.release_for(agent=agent, number=number)
        alone = self.organization.one_person_activation and policy.allows(self.access, "release.approve")
        if alone:
            self.require("release.approve")  # the second factor, before anything is recorded
        row = activation.activation_request_create(
            agent=agent,
            release=release,
            actor=self.access.actor,
            notes=payload.validated_data.get("notes", ""),
        )
        if alone:
            # Gates that refuse answer 409 and leave the request pending, as for any approval.
            activation.activation_request_approve(request=row, actor=self.access.actor)
            return Response(self.get_serializer(self._fresh(agent)).data)
        row = activation_requests().get(pk=row.pk)
        return Response(ActivationRequestSerializer(row).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Deprecate an agent",
        description="Retires the agent: it no longer runs through the API; its history stays. Needs the "
        "editor role or the `write` scope; a signed-in person also a fresh second factor (403 "
        "`step_up_required` until `POST /api/v1/auth/step-up/`).",
        request=None,
        responses={200: AgentSerializer},
    )
    @action(detail=True, methods=["post"])
    def deprecate(self, request, pk=None):
        agent = services.agent_deprecate(agent=self.get_object(), actor=self.access.actor)
        return Response(self.get_serializer(self._fresh(agent)).data)

    @extend_schema(
        summary="Clone an agent",
        description="Creates a draft copy under a new name: settings, every persona version and the tool, "
        "knowledge and guardrail assignments. Executions and learning examples are not copied.",
        request=AgentCloneSerializer,
        responses={201: AgentSerializer},
        examples=[OpenApiExample("Copy", request_only=True, value={"name": "VAT adviser (DE)"})],
    )
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        source = self.get_object()
        payload = AgentCloneSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        clone = services.agent_clone(agent=source, actor=self.access.actor, **payload.validated_data)
        return Response(self.get_serializer(self._fresh(clone)).data, status=status.HTTP_201_CREATED)


# --- Assignments ------------------------------------------------------------------------------


class AgentChildMixin(OrganizationScopedMixin):
    """A resource nested under ``/agents/{agent_pk}/``: the agent is looked up in the caller's
    organisation first (404 otherwise), then rows are limited to that agent."""

    @property
    def agent(self) -> Agent:
        if not hasattr(self, "_agent"):
            self._agent = get_object_or_404(
                Agent.objects.filter(organization=self.organization).select_related("organization"),
                pk=self.kwargs["agent_pk"],
            )
        return self._agent

    def get_queryset(self):
        return super().get_queryset().filter(agent=self.agent)


class AssignmentViewSet(AgentChildMixin, viewsets.ModelViewSet):
    """The three assignment resources in one: a subclass names its ``kind``
    (``agents.services.AssignmentKind``) and serializer; rows, writes and reordering follow from it."""

    kind: services.AssignmentKind
    pagination_class = None
    parser_classes = [JSONParser]
    ordering_fields = ["order", "id"]
    ordering = ["order", "id"]
    filter_backends: list = []
    policy_resource = "assignment"
    operations = {"reorder": "assignment.change"}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            cls.queryset = cls.kind.model.objects.select_related(cls.kind.target).order_by("order", "id")

    def perform_create(self, serializer):
        serializer.instance = services.assignment_create(
            kind=self.kind, agent=self.agent, actor=self.access.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop(self.kind.target, None)  # the serializer refuses a change of target
        serializer.instance = services.assignment_update(
            assignment=serializer.instance, actor=self.access.actor, **data
        )

    def perform_destroy(self, instance):
        services.assignment_delete(assignment=instance, actor=self.access.actor)

    @action(detail=False, methods=["post"])
    def reorder(self, request, agent_pk=None):
        payload = ReorderSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        assignments = services.assignment_reorder(
            kind=self.kind,
            agent=self.agent,
            actor=self.access.actor,
            assignment_ids=payload.validated_data["assignments"],
        )
        ids = [a.pk for a in assignments]
        rows = {a.pk: a for a in self.get_queryset().filter(pk__in=ids)}
        return Response(self.get_serializer([rows[i] for i in ids], many=True).data)


def _assignment_schema(label: str, serializer, example: dict):
    return extend_schema_view(
        list=extend_schema(summary=f"List the agent's {label} assignments", description="In run order."),
        retrieve=extend_schema(summary=f"Retrieve a {label} assignment"),
        create=extend_schema(
            summary=f"Assign a {label}",
            description=f"The {label} must belong to the agent's organisation"
            + (" (or be a built-in tool)." if label == "tool" else ".")
            + " Without `order` it is appended last.",
            examples=[OpenApiExample("Assign", request_only=True, value=example)],
        ),
        update=extend_schema(summary=f"Replace a {label} assignment's settings"),
        partial_update=extend_schema(summary=f"Change a {label} assignment's settings or order"),
        destroy=extend_schema(summary=f"Unassign a {label}"),
        reorder=extend_schema(
            summary=f"Reorder the agent's {label} assignments",
            description="Send every assignment id once, in the new order.",
            request=ReorderSerializer,
            responses={200: serializer(many=True)},
        ),
    )


@extend_schema(parameters=[AGENT_PATH])
@_assignment_schema("tool", AgentToolSerializer, {"tool": 1, "enabled": True})
class AgentToolViewSet(AssignmentViewSet):
    """``/agents/{agent_pk}/tools/``: the tools the agent may call."""

    kind = services.TOOL
    serializer_class = AgentToolSerializer


@extend_schema(parameters=[AGENT_PATH])
@_assignment_schema(
    "knowledge base", AgentKnowledgeSerializer, {"knowledge_base": 1, "top_k": 5, "min_score": 0.0}
)
class AgentKnowledgeViewSet(AssignmentViewSet):
    """``/agents/{agent_pk}/knowledge/``: the knowledge bases the agent searches."""

    kind = services.KNOWLEDGE
    serializer_class = AgentKnowledgeSerializer


@extend_schema(parameters=[AGENT_PATH])
@_assignment_schema("guardrail", AgentGuardrailSerializer, {"guardrail": 1, "enabled": True})
class AgentGuardrailViewSet(AssignmentViewSet):
    """``/agents/{agent_pk}/guardrails/``: the guardrails the agent runs, in order."""

    kind = services.GUARDRAIL
    serializer_class = AgentGuardrailSerializer


# --- Providers --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List model providers", description="API keys are never returned."),
    retrieve=extend_schema(summary="Retrieve a model provider"),
    create=extend_schema(
        summary="Create a model provider",
        description="Needs the admin role or the admin scope. `api_key` is write-only and stored encrypted.",
        examples=[
            OpenApiExample(
                "Local Ollama",
                request_only=True,
                value={
                    "name": "Ollama",
                    "kind": "openai_compatible",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "default_model": "llama3.1",
                    "api_key": "ollama",
                    "timeout_seconds": 30,
                },
            )
        ],
    ),
    update=extend_schema(summary="Replace a model provider", description="Leave out `api_key` to keep it."),
    partial_update=extend_schema(
        summary="Update a model provider", description="Leave out `api_key` to keep it."
    ),
    destroy=extend_schema(summary="Delete a model provider", description="409 while an agent uses it."),
)
class ModelProviderViewSet(OrganizationScopedViewSet):
    """Where the organisation's model calls go. Writing needs the admin role or scope."""

    queryset = ModelProvider.objects.all()
    serializer_class = ModelProviderSerializer
    parser_classes = [JSONParser]
    filterset_class = ModelProviderFilterSet
    search_fields = ["name", "default_model"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name", "id"]
    policy_resource = "model_provider"

    def perform_create(self, serializer):
        # Typing a provider's secret is sensitive (a fresh second factor: prisma_glow.policy.STEP_UP).
        self.require("model_provider.add", api_key=serializer.validated_data.get("api_key"))
        serializer.instance = services.provider_create(
            organization=self.organization,
            actor=self.access.actor,
            **serializer.validated_data,
        )

    def perform_update(self, serializer):
        # Setting, replacing or clearing ("") the secret, or sending a stored one elsewhere (another
        # base_url or kind), is sensitive; other changes are not.
        data = serializer.validated_data
        self.require(
            "model_provider.change",
            serializer.instance,
            **{field: data.get(field) for field in ("api_key", *policy.SECRET_DESTINATION)},
        )
        serializer.instance = services.provider_update(
            provider=serializer.instance,
            actor=self.access.actor,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.provider_delete(provider=instance, actor=self.access.actor)


# --- Budgets ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List budgets",
        description="Each with what its current period has consumed (`used`, `reserved`, `remaining`, "
        "until `resets_at`). Filter by `agent`, `organization_wide`, `metric` and `period`. Needs the "
        "admin role or the admin scope.",
    ),
    retrieve=extend_schema(summary="Retrieve a budget"),
    create=extend_schema(
        summary="Create a budget",
        description="Per day or per month, tokens or cost, for the organisation (`agent` null) or one "
        "agent. Each provider call of a run first reserves its largest possible cost in every budget "
        "that applies; a run that cannot is `refused` (the execute endpoint answers 429 "
        "`budget_exceeded`). One budget per organisation (or agent), metric and period (409).",
        examples=[
            OpenApiExample(
                "Daily cost", request_only=True, value={"metric": "cost", "period": "day", "limit": "25.00"}
            ),
            OpenApiExample(
                "An agent's monthly tokens",
                request_only=True,
                value={"agent": 1, "metric": "tokens", "period": "month", "limit": "2000000"},
            ),
        ],
    ),
    update=extend_schema(summary="Replace a budget"),
    partial_update=extend_schema(summary="Change a budget (its limit…)"),
    destroy=extend_schema(summary="Delete a budget", description="Runs are no longer limited by it."),
)
class BudgetViewSet(OrganizationScopedViewSet):
    """What the organisation's runs may consume per day or month, and what they have. Admin role or
    scope, reading included."""

    queryset = Budget.objects.select_related("agent")
    serializer_class = BudgetSerializer
    parser_classes = [JSONParser]
    filterset_class = BudgetFilterSet
    ordering_fields = ["metric", "period", "limit", "created_at"]
    ordering = ["id"]
    policy_resource = "budget"

    def get_queryset(self):
        return budgets_with_usage(super().get_queryset())

    def _fresh(self, budget: Budget) -> Budget:
        return self.get_queryset().get(pk=budget.pk)

    def perform_create(self, serializer):
        budget = services.budget_create(
            organization=self.organization, actor=self.access.actor, **serializer.validated_data
        )
        serializer.instance = self._fresh(budget)

    def perform_update(self, serializer):
        budget = services.budget_update(
            budget=serializer.instance, actor=self.access.actor, **serializer.validated_data
        )
        serializer.instance = self._fresh(budget)

    def perform_destroy(self, instance):
        services.budget_delete(budget=instance, actor=self.access.actor)


# --- Executions -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List executions",
        description="Newest first, cursor-paginated. Filter by `agent`, `conversation`, `status`, `source`, "
        "`is_test` and `created_after` / `created_before` (ISO 8601). `search` looks in the input and the "
        "answer, for members with the editor role or above only (the texts hold client identifiers, "
        "shown masked to others): anyone else, API keys included, gets a 400 on `search`.",
    ),
    retrieve=extend_schema(summary="Retrieve an execution with its trace (steps in order)"),
)
class ExecutionViewSet(ReplayEvidenceMixin, OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Runs of the organisation's agents, with their traces. Read-only; feedback can be added."""

    queryset = Execution.objects.select_related("agent", "persona", "release").order_by("-created_at", "-id")
    serializer_class = ExecutionSerializer
    parser_classes = [JSONParser]
    filterset_class = ExecutionFilterSet
    pagination_class = CreatedCursorPagination
    filter_backends = [
        backend
        for backend in viewsets.ReadOnlyModelViewSet.filter_backends
        if backend.__name__ != "OrderingFilter"
    ]
    search_fields = ["input", "output"]
    policy_resource = "execution"
    operations = {**ReplayEvidenceMixin.operations, "feedback": "execution.feedback"}

    def filter_queryset(self, queryset):
        # The texts hold client identifiers shown masked to all but editors: a search matching inside
        # one would rebuild it digit by digit (agents.privacy). Detail requests too: get_object filters.
        if self.request.query_params.get("search", "").strip() and not sees_every_identifier(self.access):
            # The caller's role, not the request, is what falls short: 403 (the same request from an
            # editor is valid), naming the parameter.
            raise exceptions.PermissionDenied({"search": [SEARCH_REFUSED]})
        return super().filter_queryset(queryset)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(Prefetch("steps", ExecutionStep.objects.order_by("ordinal")))
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return ExecutionDetailSerializer
        if self.action == "feedback":
            return FeedbackSerializer
        return ExecutionSerializer

    @extend_schema(
        summary="Give feedback on an execution",
        description="A thumbs up (`rating: 1`) or thumbs down (`rating: -1`) with an optional comment. A thumbs down with a "
        "`correction` proposes a learning example for review (its id is in `learning_example`). Needs the "
        "viewer role or the `execute` scope.",
        request=FeedbackSerializer,
        responses={201: FeedbackSerializer},
        examples=[
            OpenApiExample(
                "Correction",
                request_only=True,
                value={
                    "rating": -1,
                    "comment": "Wrong place of supply.",
                    "correction": "The French customer accounts for the VAT under the reverse charge.",
                },
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def feedback(self, request, pk=None):
        execution = self.get_object()
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feedback = services.feedback_create(
            execution=execution,
            actor=self.access.actor,
            **serializer.validated_data,
        )
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)


# --- Conversations ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List conversations",
        description="Newest first, cursor-paginated. Filter by `agent`, `started_by_user`, "
        "`started_by_api_key` and `created_after` / `created_before` (ISO 8601). A conversation is "
        "started by a run without `conversation` (`POST /agents/{id}/execute/`).",
    ),
    retrieve=extend_schema(summary="Retrieve a conversation"),
    turns=extend_schema(
        summary="List a conversation's turns",
        description="Its executions in turn order (1, 2, …), as the executions list shows them; each "
        "one's trace is at `/executions/{id}/`. Page-numbered.",
        responses={200: ConversationTurnSerializer(many=True)},
    ),
)
class ConversationViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Conversations with the organisation's agents, read like the executions they are made of: the
    same rights (``execution.view``), the same scoping (another organisation's answers 404)."""

    queryset = (
        Conversation.objects.select_related("agent")
        .annotate(turn_count=Count("turns"), last_turn_at=Max("turns__created_at"))
        .order_by("-created_at", "-id")
    )
    serializer_class = ConversationSerializer
    parser_classes = [JSONParser]
    filterset_class = ConversationFilterSet
    pagination_class = CreatedCursorPagination
    filter_backends = [
        backend
        for backend in viewsets.ReadOnlyModelViewSet.filter_backends
        if backend.__name__ != "OrderingFilter"
    ]
    search_fields = ["title"]
    operations = {"list": "execution.view", "retrieve": "execution.view", "turns": "execution.view"}

    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=StandardPagination)
    def turns(self, request, pk=None):
        conversation = self.get_object()
        turns = (
            Execution.objects.filter(conversation=conversation)
            .select_related("agent", "persona", "release")
            .order_by("turn")
        )
        page = self.paginate_queryset(turns)
        serializer = ConversationTurnSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


# --- Learning examples ------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List learning examples", description="Filter by `agent` and `status`."),
    retrieve=extend_schema(summary="Retrieve a learning example"),
    create=extend_schema(
        summary="Create a learning example",
        description="New examples are proposed; approve them to add them to the agent's prompt.",
    ),
    update=extend_schema(
        summary="Replace a learning example", description="An approved example goes back to review."
    ),
    partial_update=extend_schema(
        summary="Update a learning example", description="An approved example goes back to review."
    ),
    destroy=extend_schema(summary="Delete a learning example"),
)
class LearningExampleViewSet(OrganizationScopedViewSet):
    """Few-shot examples per agent: proposed (from corrections or by hand), approved or rejected."""

    queryset = LearningExample.objects.all()
    serializer_class = LearningExampleSerializer
    parser_classes = [JSONParser]
    filterset_class = LearningExampleFilterSet
    search_fields = ["input", "output"]
    ordering_fields = ["created_at", "updated_at", "status"]
    ordering = ["-created_at", "-id"]
    policy_resource = "learning_example"
    operations = {"approve": "learning_example.change", "reject": "learning_example.change"}

    def get_serializer_context(self):
        # One example at a time (its detail, or the one just written): identifiers for those allowed.
        return {**super().get_serializer_context(), "opened_alone": self.detail or self.action == "create"}

    def perform_create(self, serializer):
        serializer.instance = services.learning_example_create(
            actor=self.access.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("agent", None)
        serializer.instance = services.learning_example_update(
            example=serializer.instance, actor=self.access.actor, **data
        )

    def perform_destroy(self, instance):
        services.learning_example_delete(example=instance, actor=self.access.actor)

    @extend_schema(
        summary="Approve a learning example",
        description="From now on the agent's model sees it as a few-shot example.",
        request=None,
        responses={200: LearningExampleSerializer},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        example = services.learning_example_approve(example=self.get_object(), actor=self.access.actor)
        return Response(self.get_serializer(example).data)

    @extend_schema(
        summary="Reject a learning example", request=None, responses={200: LearningExampleSerializer}
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        example = services.learning_example_reject(example=self.get_object(), actor=self.access.actor)
        return Response(self.get_serializer(example).data)


__all__ = [
    "AgentGuardrailViewSet",
    "BudgetViewSet",
    "AgentKnowledgeViewSet",
    "AgentToolViewSet",
    "AgentViewSet",
    "ConversationViewSet",
    "ExecutionViewSet",
    "LearningExampleViewSet",
    "ModelProviderViewSet",
]
