"""Organisation scoping for the staff UI, in one place.

Every ModelAdmin and custom page asks this module which organisation the request acts for and
what the user's role there is (what that role may do is ``prisma_glow.policy``'s answer). Superusers see every organisation's rows; everyone else sees only the
organisation currently selected (one of their memberships, chosen with the switcher). Objects
outside that scope are simply not in the querysets, so their pages answer 404.

Each organisation-owned model declares how its rows reach their organisation, as it declares its
``config_scope``: ``organization_path = "agent__organization"`` (``"pk"`` for the organisation
itself), and ``organization_shared_when_null = True`` when rows without an organisation are shared
by every organisation (built-in tools, read-only for members). A model without ``organization_path``
is not organisation-owned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.http import Http404

from prisma_glow import factors, policy
from prisma_glow.models import organization_q
from prisma_glow.tenancy.models import Membership, Organization, Role

SESSION_KEY = "admin_organization_id"


def organization_path(model) -> str | None:
    """The path from ``model``'s rows to their organisation (its ``organization_path``), or None."""
    return getattr(model, "organization_path", None)


@dataclass
class AdminAccess:
    """The organisation a staff request acts for, the user's role there, and their other choices."""

    organization: Organization | None
    role: str | None
    is_superuser: bool
    organizations: list[Organization] = field(default_factory=list)
    # A ``prisma_glow.policy.Principal``: the staff UI acts for people, never for an API key.
    api_key = None
    # The request, for the step-up's freshness (read from its session on each decision).
    request: object | None = field(default=None, repr=False, compare=False)

    def step_up_needed(self) -> bool:
        """Whether the user must check a second factor before a sensitive operation."""
        return self.request is not None and factors.step_up_needed(self.request)

    def may(self, operation: str, obj=None, **context) -> bool:
        """Whether ``prisma_glow.policy`` allows this user ``operation`` (on ``obj``)."""
        return policy.allows(self, operation, obj, **context)

    @property
    def can_view(self) -> bool:
        return self.is_superuser or self.role is not None


def get_admin_access(request) -> AdminAccess:
    """Resolve (once per request) the selected organisation and the user's role in it."""
    cached = getattr(request, "_admin_access", None)
    if cached is not None:
        return cached
    user = request.user
    if not user.is_authenticated or not user.is_active:
        access = AdminAccess(organization=None, role=None, is_superuser=False)
    else:
        memberships = list(
            Membership.objects.select_related("organization").filter(user=user).order_by("created_at", "id")
        )
        roles = {m.organization_id: m.role for m in memberships}
        if user.is_superuser:
            organizations = list(Organization.objects.order_by("name", "id"))
        else:
            organizations = sorted((m.organization for m in memberships), key=lambda o: (o.name, o.pk))
        selected_id = request.session.get(SESSION_KEY)
        organization = next((o for o in organizations if o.pk == selected_id), None)
        if organization is None and memberships:
            organization = memberships[0].organization
        if organization is None and organizations:
            organization = organizations[0]
        role = roles.get(organization.pk) if organization is not None else None
        if user.is_superuser and role is None and organization is not None:
            role = Role.OWNER
        access = AdminAccess(
            organization=organization,
            role=role,
            is_superuser=user.is_superuser,
            organizations=organizations,
            request=request,
        )
    request._admin_access = access
    return access


def scope_queryset(queryset: QuerySet, request, *, all_for_superuser: bool = True) -> QuerySet:
    """Limit ``queryset`` to the request's organisation (superusers: everything, by default)."""
    access = get_admin_access(request)
    model = queryset.model
    if model is get_user_model():
        if access.is_superuser and all_for_superuser:
            return queryset
        if access.organization is None:
            return queryset.none()
        return queryset.filter(memberships__organization=access.organization).distinct()
    path = organization_path(model)
    if path is None:
        return queryset
    if access.is_superuser and all_for_superuser:
        return queryset
    if access.organization is None:
        return queryset.none()
    return queryset.filter(organization_q(model, access.organization))


def scoped_get(model_or_queryset, request, **lookup) -> Model:
    """One object inside the request's scope, or 404 (another organisation's object included)."""
    queryset = (
        model_or_queryset
        if isinstance(model_or_queryset, QuerySet)
        else model_or_queryset._default_manager.all()
    )
    try:
        return scope_queryset(queryset, request).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.")


def organization_users(request) -> QuerySet:
    """Users who belong to the request's organisation (owner choices, filters)."""
    return scope_queryset(get_user_model().objects.order_by("username"), request, all_for_superuser=False)
