"""The admin's live test console (mounted by ``prisma_glow.admin_site`` under /admin/console/).

Every view is wrapped in ``admin.site.admin_view``: staff only, anonymous users go to the login page.
"""

from django.contrib import admin
from django.urls import path

from agents.console import compare, views

app_name = "console"

urlpatterns = [
    path("", admin.site.admin_view(views.console), name="index"),
    path("run/", admin.site.admin_view(views.run), name="run"),
    path("clear/", admin.site.admin_view(views.clear), name="clear"),
    path("agents/<int:agent_id>/compare/", admin.site.admin_view(compare.compare_view), name="compare"),
    path("executions/<int:execution_id>/feedback/", admin.site.admin_view(views.feedback), name="feedback"),
    path("tool-approvals/<int:approval_id>/decide/", admin.site.admin_view(views.decide), name="decide"),
]
