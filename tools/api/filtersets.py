"""Filters of the tools API."""

import django_filters

from prisma_glow.api.filters import FilterSet
from tools.models import Tool, ToolKind


class ToolFilterSet(FilterSet):
    kind = django_filters.ChoiceFilter(choices=ToolKind.choices)
    is_builtin = django_filters.BooleanFilter(
        field_name="organization", lookup_expr="isnull", label="Built-in"
    )

    class Meta:
        model = Tool
        fields = ["kind", "is_enabled", "is_builtin"]
