"""List filters whose choices come from the request's organisation only."""

from __future__ import annotations

from django.contrib import admin

from prisma_glow.admin.scoping import organization_users, scope_queryset


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
        if value and value.isdigit():
            return queryset.filter(owner_id=int(value))
        return queryset


class OrganizationKnowledgeBaseFilter(admin.SimpleListFilter):
    """Documents by knowledge base, among the organisation's knowledge bases."""

    title = "knowledge base"
    parameter_name = "knowledge_base"

    def lookups(self, request, model_admin):
        from knowledge.models import KnowledgeBase

        bases = scope_queryset(KnowledgeBase.objects.order_by("name"), request, all_for_superuser=False)
        return [(str(pk), name) for pk, name in bases.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(knowledge_base_id=int(value))
        return queryset
