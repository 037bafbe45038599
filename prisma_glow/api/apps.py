from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "prisma_glow.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from prisma_glow.api import (
            schema,  # noqa: F401  (registers the authentication extension)
            strict,
        )

        strict.install()
