"""Which organisation a request acts for, and with which rights."""

from __future__ import annotations

from dataclasses import dataclass, field

from rest_framework import exceptions

from prisma_glow import factors, policy
from prisma_glow.tenancy.models import APIKey, Membership, Organization, Role, Scope

ORG_HEADER = "HTTP_X_ORGANIZATION"


@dataclass(frozen=True)
class Access:
    """The caller's organisation and rights: a member's role, or an API key's scopes.

    A ``prisma_glow.policy.Principal``: the policy decides what it may do."""

    organization: Organization
    role: str | None = None
    api_key: APIKey | None = None
    user: object | None = None
    # The request, for the step-up's freshness (read from its session on each decision).
    request: object | None = field(default=None, repr=False, compare=False)

    # A site superuser acting through the API acts with their membership's role, like anyone else.
    is_superuser = False

    def may(self, operation: str, obj=None, **context) -> bool:
        """Whether ``prisma_glow.policy`` allows this caller ``operation`` (on ``obj``)."""
        return policy.allows(self, operation, obj, **context)

    def step_up_needed(self) -> bool:
        """Whether this person must check a second factor before a sensitive operation (never a key)."""
        return self.api_key is None and self.request is not None and factors.step_up_needed(self.request)

    @property
    def actor(self):
        """What audit events and executions record as the actor: the key or the user."""
        return self.api_key if self.api_key is not None else self.user


def get_access(request) -> Access:
    """Resolve (and cache on the request) the caller's organisation and rights.

    API keys act for their own organisation. A signed-in user acts for the organisation named by the
    ``X-Organization`` header (a slug), else their only or first membership.
    """
    cached = getattr(request, "_prisma_glow_access", None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    if isinstance(auth, APIKey):
        access = Access(organization=auth.organization, api_key=auth)
    else:
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        memberships = Membership.objects.select_related("organization").filter(user=user)
        slug = request.META.get(ORG_HEADER)
        if slug:
            membership = memberships.filter(organization__slug=slug).first()
            if membership is None:
                raise exceptions.PermissionDenied(f"You are not a member of the organisation '{slug[:60]}'.")
        else:
            membership = memberships.order_by("created_at", "id").first()
            if membership is None:
                raise exceptions.PermissionDenied("You are not a member of any organisation.")
        access = Access(
            organization=membership.organization, role=membership.role, user=user, request=request
        )
    request._prisma_glow_access = access
    return access


__all__ = ["Access", "get_access", "Role", "Scope"]
