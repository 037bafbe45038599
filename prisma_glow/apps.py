from django.contrib.admin.apps import AdminConfig


class PrismaGlowAdminConfig(AdminConfig):
    """Installs the customised staff site (``prisma_glow.admin_site``) as Django's default admin."""

    default_site = "prisma_glow.admin_site.PrismaGlowAdminSite"

    def ready(self):
        super().ready()
        from prisma_glow import checks  # noqa: F401  (registers the project's system checks)
