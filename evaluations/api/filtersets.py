"""Filters of the evaluations API, on the platform's strict filter types."""

import django_filters

from evaluations.models import EvalRun, Requirement, RunStatus, Suite
from prisma_glow.api.filters import FilterSet, IdFilter


class SuiteFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id")

    class Meta:
        model = Suite
        fields = ["agent"]


class RunFilterSet(FilterSet):
    suite = IdFilter(field_name="suite_id")
    agent = IdFilter(field_name="suite__agent_id")
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices)

    class Meta:
        model = EvalRun
        fields = ["suite", "agent", "status"]


class RequirementFilterSet(FilterSet):
    agent = IdFilter(field_name="agent_id")

    class Meta:
        model = Requirement
        fields = ["agent"]
