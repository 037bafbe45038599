"""Filters of the audit log: action, object, actor and date range."""

import django_filters

from prisma_glow.api.filters import FilterSet, IdFilter, IsoDateTimeFromToRangeFilter
from prisma_glow.audit.models import AuditEvent


class AuditEventFilterSet(FilterSet):
    action = django_filters.CharFilter(help_text="Exact action, e.g. `agent.update`.")
    action_prefix = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", help_text="Actions starting with this, e.g. `agent.`."
    )
    object_type = django_filters.CharFilter(help_text="`app_label.model`, e.g. `agents.agent`.")
    object_id = django_filters.CharFilter()
    actor_user = IdFilter(field_name="actor_user_id", help_text="The acting user's id.")
    actor_api_key = IdFilter(field_name="actor_api_key_id", help_text="The acting API key's id.")
    actor = django_filters.CharFilter(
        field_name="actor_label", lookup_expr="icontains", help_text="Part of the actor's name."
    )
    at = IsoDateTimeFromToRangeFilter(
        help_text="Date range: `at_after` and/or `at_before` (ISO 8601, inclusive)."
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "object_id", "actor_user", "actor_api_key", "actor", "at"]
