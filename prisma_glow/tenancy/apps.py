from django.apps import AppConfig, apps


class TenancyConfig(AppConfig):
    name = "prisma_glow.tenancy"
    label = "tenancy"
    verbose_name = "Organisations and access"

    def ready(self) -> None:
        from prisma_glow.config_stamp import connect_all

        connect_all(apps.get_models())

        from axes.signals import user_locked_out

        from prisma_glow.tenancy.lockout import record_lock

        user_locked_out.connect(record_lock, dispatch_uid="prisma_glow.tenancy.lockout.record_lock")
