from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "prisma_glow.tenancy"
    label = "tenancy"
    verbose_name = "Organisations and access"
