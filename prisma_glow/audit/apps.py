from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "prisma_glow.audit"
    label = "audit"
    verbose_name = "Audit log"
