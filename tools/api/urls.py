"""Routes of the tools API, registered on the one router of ``prisma_glow.api.urls``."""

from tools.api.views import ToolViewSet


def register(router) -> None:
    router.register("tools", ToolViewSet, basename="tool")
