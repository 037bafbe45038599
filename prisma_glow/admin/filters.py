"""List filters whose choices come from the request's organisation only."""

from __future__ import annotations

from django.contrib import admin

from prisma_glow.admin.scoping import organization_users
from prisma_glow.ids import parse_id


class OwnerFilter(admin.SimpleListFilter):
    """Agents by owner: the organisation's members (never another organisation's people)."""

    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        choices = [(str(u.pk), u.get_username()) for u in organization_users(request)]
        return [("none", "No owner"), *choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(owner__isnull=True)
        if (pk := parse_id(value)) is not None:
            return queryset.filter(owner_id=pk)
        return queryset
