"""Base viewsets: every queryset scoped to the caller's organisation, in one place."""

from __future__ import annotations

from rest_framework import viewsets

from prisma_glow.api import permissions
from prisma_glow.api.tenancy import Access, get_access
from prisma_glow.models import organization_q


class OrganizationScopedMixin:
    """Scopes ``queryset`` to the caller's organisation, by the path its model declares
    (``prisma_glow.models.organization_q``). Objects of other organisations are simply not in the
    queryset, so they answer 404. Set ``policy_resource`` (and ``operations`` for custom actions) to
    say what each action does (``prisma_glow.api.permissions``).
    """

    @property
    def access(self) -> Access:
        return get_access(self.request)

    @property
    def organization(self):
        return self.access.organization

    def require(self, operation: str, obj=None, **context) -> None:
        """403 with the policy's reason unless the caller may ``operation`` (for rules that depend on
        what is asked, such as the role a member is given)."""
        permissions.require(self.request, operation, obj, **context)

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.filter(organization_q(queryset.model, self.organization))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self.request, "user", None) is not None and self.request.user.is_authenticated:
            context["access"] = self.access
            context["organization"] = self.organization
        return context


class OrganizationScopedViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """CRUD over one organisation's rows; writes go through services in the subclass's hooks."""


class OrganizationScopedReadOnlyViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """List and retrieve over one organisation's rows."""
