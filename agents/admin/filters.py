"""List filters of the agents' pages, with choices from the request's organisation only."""

from __future__ import annotations

from django.contrib import admin

from agents.models import Agent
from prisma_glow.admin.scoping import scope_queryset
from prisma_glow.ids import parse_id


class OrganizationAgentFilter(admin.SimpleListFilter):
    """Rows by agent, among the organisation's agents."""

    title = "agent"
    parameter_name = "agent"

    def lookups(self, request, model_admin):
        agents = scope_queryset(Agent.objects.order_by("name"), request, all_for_superuser=False)
        return [(str(pk), name) for pk, name in agents.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if (pk := parse_id(value)) is not None:
            return queryset.filter(agent_id=pk)
        return queryset
