from django.contrib.admin.apps import AdminConfig


class PrismaGlowAdminConfig(AdminConfig):
    """Installs the customised staff site (``prisma_glow.admin_site``) as Django's default admin."""

    default_site = "prisma_glow.admin_site.PrismaGlowAdminSite"
