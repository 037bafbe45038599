"""Role and scope checks, declared on each viewset.

A viewset says which role (for members) and which scope (for API keys) each kind of request needs:

    read_role = "viewer";  read_scope = "read"       # GET, HEAD, OPTIONS
    write_role = "editor"; write_scope = "write"     # POST, PUT, PATCH, DELETE
    action_permissions = {"execute": ("editor", "execute"), "rotate": ("admin", "admin")}

Objects of another organisation never reach this check: the scoped queryset answers 404 first.
"""

from __future__ import annotations

from rest_framework import permissions

from prisma_glow.api.tenancy import get_access


def required_rights(view, request) -> tuple[str, str]:
    action = getattr(view, "action", None)
    specific = getattr(view, "action_permissions", {}) or {}
    if action in specific:
        return specific[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", "viewer"), getattr(view, "read_scope", "read")
    return getattr(view, "write_role", "editor"), getattr(view, "write_scope", "write")


class OrganizationRolePermission(permissions.BasePermission):
    """Authenticated, acting for an organisation, with the role or scope the view asks for."""

    message = "Your role or API key scope does not allow this."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        access = get_access(request)
        role, scope = required_rights(view, request)
        if access.allows(role=role, scope=scope):
            return True
        if access.api_key is not None:
            self.message = f"This API key lacks the '{scope}' scope needed here."
        else:
            self.message = f"Your role ({access.role}) cannot do this; it needs {role} or higher."
        return False
