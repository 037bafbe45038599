"""The staff UI: a customised AdminSite (dashboard, organisation-scoped pages, test console)."""

from django.contrib import admin
from django.urls import include, path


class PrismaGlowAdminSite(admin.AdminSite):
    site_header = "Prisma Glow"
    site_title = "Prisma Glow"
    index_title = "Dashboard"

    def get_urls(self):
        # The test console lives in agents/console/ and is mounted under /admin/console/.
        custom = [path("console/", include("agents.console.urls"))]
        return custom + super().get_urls()
