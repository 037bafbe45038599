"""Filters of the guardrails API."""

import django_filters

from guardrails.models import Guardrail, GuardrailAction, GuardrailKind
from prisma_glow.api.filters import FilterSet


class GuardrailFilterSet(FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=GuardrailKind.choices)
    action = django_filters.ChoiceFilter(choices=GuardrailAction.choices)

    class Meta:
        model = Guardrail
        fields = [
            "kind",
            "action",
            "enabled",
            "applies_to_input",
            "applies_to_retrieval",
            "applies_to_output",
        ]
