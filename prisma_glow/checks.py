"""Prisma Glow's own system checks (registered in ``prisma_glow.apps``).

The outbound allow-lists are checked at start-up, so a malformed entry is named once rather than
failing each outbound call.

``manage.py check --deploy`` warns about settings that are fine for one development process and
wrong in production. django-ratelimit's own checks are not used: it is a library here, not an
installed app, and they would also call Django's built-in Redis cache "not officially supported".
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.checks import Error as CheckError
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured

from prisma_glow.admin.base import OrganizationScopedAdmin
from prisma_glow.admin.scoping import organization_path
from prisma_glow.outbound import ALLOW_LISTS, OutboundPolicy

# Cache backends whose counts other processes never see, and what that does to rate limits.
UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "count per process",
    "django.core.cache.backends.dummy.DummyCache": "never count (the dummy cache stores nothing)",
}


@register(Tags.security, deploy=True)
def check_rate_limit_cache(app_configs=None, **kwargs):
    """With several web processes, a per-process cache multiplies every rate limit by their number
    (2 gunicorn workers: 1,200 requests a minute where 600 are configured)."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return []
    cache_name = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    backend = settings.CACHES.get(cache_name, {}).get("BACKEND", "")
    effect = UNSHARED_CACHES.get(backend)
    if effect is None:
        return []
    return [
        CheckWarning(
            f"The '{cache_name}' cache ({backend.rsplit('.', 1)[-1]}) is not shared between processes, "
            f"so the API's rate limits {effect}: with several web processes a caller gets the limit "
            "once per process.",
            hint="Set REDIS_URL (redis://host:6379/0) so that every process counts in one shared cache, "
            "or DJANGO_RATELIMIT_ENABLE=0 if the limits are enforced in front of the application.",
            id="prisma_glow.W001",
        )
    ]


@register(Tags.security)
def check_allow_lists(app_configs=None, **kwargs) -> list:
    """``manage.py check`` (and every command that runs it) names a malformed allow-list entry,
    rather than each outbound call failing on it."""
    errors: list = []
    for name, env_name in ALLOW_LISTS.items():
        try:
            OutboundPolicy.from_setting(name, env_name)
        except ImproperlyConfigured as exc:
            errors.append(
                CheckError(
                    str(exc),
                    hint="Entries are host names, IP addresses or CIDR networks, each optionally with "
                    "a port: localhost:11434, 10.0.0.0/8, [::1]:8080.",
                    id="prisma_glow.E101",
                )
            )
    return errors


@register(Tags.security, Tags.admin)
def check_admin_scoping(app_configs=None, **kwargs):
    """An organisation-scoped ModelAdmin scopes its rows by the model's ``organization_path``: a model
    without one would list every organisation's rows to every member."""
    return [
        CheckError(
            f"{model._meta.label} is shown by {type(model_admin).__name__}, an organisation-scoped "
            "admin, but declares no organization_path: its pages would show every organisation's rows.",
            hint='Declare how its rows reach their organisation, e.g. organization_path = "agent__organization".',
            obj=model_admin,
            id="prisma_glow.E102",
        )
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, OrganizationScopedAdmin) and organization_path(model) is None
    ]
