"""Routes of the guardrails API, registered on the one router of ``prisma_glow.api.urls``."""

from guardrails.api.views import GuardrailViewSet


def register(router) -> None:
    router.register("guardrails", GuardrailViewSet, basename="guardrail")
