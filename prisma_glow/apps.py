from django.contrib.admin.apps import AdminConfig


class PrismaGlowAdminConfig(AdminConfig):
    """Installs the customised staff site (``prisma_glow.admin_site``) as Django's default admin."""

    default_site = "prisma_glow.admin_site.PrismaGlowAdminSite"

    def ready(self):
        super().ready()
        # checks registers the project's system checks; sessions renews the session key at login;
        # aggregates gives every SQLite connection the percentile function PostgreSQL has.
        from prisma_glow import aggregates, checks, sessions  # noqa: F401
