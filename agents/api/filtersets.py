"""Filters of the agents API (django-filter), on the platform's strict filter types: ids within the
bigint range, ISO 8601 date-times normalised to UTC."""

import django_filters

from agents.models import (
    Agent,
    AgentStatus,
    AgentType,
    Budget,
    BudgetMetric,
    BudgetPeriod,
    Conversation,
    Execution,
    ExecutionSource,
    ExecutionStatus,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
    ProviderKind,
)
from prisma_glow.api.filters import FilterSet, IdFilter, IsoDateTimeFilter


class AgentFilterSet(FilterSet):
    type = django_filters.MultipleChoiceFilter(choices=AgentType.choices)
    status = django_filters.MultipleChoiceFilter(choices=AgentStatus.choices)
    owner = IdFilter(field_name="owner_id", label="Owner (user id)")

    class Meta:
        model = Agent
        fields = ["type", "status", "owner"]


class ExecutionFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id")
    conversation = IdFilter(field_name="conversation_id", label="Conversation (its turns)")
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    source = django_filters.MultipleChoiceFilter(choices=ExecutionSource.choices)
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)"
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)"
    )
    is_test = django_filters.BooleanFilter()

    class Meta:
        model = Execution
        fields = ["agent", "conversation", "status", "source", "is_test"]


class ConversationFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id")
    started_by_user = IdFilter(field_name="started_by_user_id", label="Started by (user id)")
    started_by_api_key = IdFilter(field_name="started_by_api_key_id", label="Started by (API key id)")
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)"
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)"
    )

    class Meta:
        model = Conversation
        fields = ["agent", "started_by_user", "started_by_api_key"]


class LearningExampleFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id")
    status = django_filters.MultipleChoiceFilter(choices=LearningExampleStatus.choices)

    class Meta:
        model = LearningExample
        fields = ["agent", "status"]


class ModelProviderFilterSet(FilterSet):
    kind = django_filters.ChoiceFilter(choices=ProviderKind.choices)

    class Meta:
        model = ModelProvider
        fields = ["kind", "is_default"]


class BudgetFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id", label="Agent (its own budgets)")
    organization_wide = django_filters.BooleanFilter(
        field_name="agent", lookup_expr="isnull", label="Only the organisation's budgets (no agent)"
    )
    metric = django_filters.ChoiceFilter(choices=BudgetMetric.choices)
    period = django_filters.ChoiceFilter(choices=BudgetPeriod.choices)

    class Meta:
        model = Budget
        fields = ["agent", "organization_wide", "metric", "period"]
