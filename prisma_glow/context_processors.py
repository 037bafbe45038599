"""Template context every page of the staff UI can read."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from prisma_glow.display import DEFAULT_CURRENCY


def currency(request) -> dict:
    """``currency``: the selected organisation's currency code, for ``{{ cost|money:currency }}``
    (the default, EUR, without one). Lazy: resolved, once per request, only by a page that shows money."""

    def resolve() -> str:
        from prisma_glow.admin.scoping import get_admin_access

        organization = get_admin_access(request).organization if hasattr(request, "user") else None
        return getattr(organization, "currency", None) or DEFAULT_CURRENCY

    return {"currency": SimpleLazyObject(resolve)}
