"""The staff UI: a customised AdminSite (dashboard, organisation-scoped pages, test console)."""

from django.contrib import admin


class PrismaGlowAdminSite(admin.AdminSite):
    site_header = "Prisma Glow"
    site_title = "Prisma Glow"
    index_title = "Dashboard"
