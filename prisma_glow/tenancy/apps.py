from django.apps import AppConfig, apps


class TenancyConfig(AppConfig):
    name = "prisma_glow.tenancy"
    label = "tenancy"
    verbose_name = "Organisations and access"

    def ready(self) -> None:
        from prisma_glow.config_stamp import connect_all

        connect_all(apps.get_models())
