"""Filters of the agents API (django-filter)."""

import django_filters

from agents.models import (
    Agent,
    AgentStatus,
    AgentType,
    Execution,
    ExecutionSource,
    ExecutionStatus,
    LearningExample,
    LearningExampleStatus,
    ModelProvider,
    ProviderKind,
)


class AgentFilterSet(django_filters.FilterSet):
    type = django_filters.MultipleChoiceFilter(choices=AgentType.choices)
    status = django_filters.MultipleChoiceFilter(choices=AgentStatus.choices)
    owner = django_filters.NumberFilter(field_name="owner_id", label="Owner (user id)")

    class Meta:
        model = Agent
        fields = ["type", "status", "owner"]


class ExecutionFilterSet(django_filters.FilterSet):
    agent = django_filters.NumberFilter(field_name="agent_id")
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    source = django_filters.MultipleChoiceFilter(choices=ExecutionSource.choices)
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)"
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)"
    )
    is_test = django_filters.BooleanFilter()

    class Meta:
        model = Execution
        fields = ["agent", "status", "source", "is_test"]


class LearningExampleFilterSet(django_filters.FilterSet):
    agent = django_filters.NumberFilter(field_name="agent_id")
    status = django_filters.MultipleChoiceFilter(choices=LearningExampleStatus.choices)

    class Meta:
        model = LearningExample
        fields = ["agent", "status"]


class ModelProviderFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ProviderKind.choices)

    class Meta:
        model = ModelProvider
        fields = ["kind", "is_default"]
