"""The staff UI: a customised AdminSite (dashboard, organisation-scoped pages, test console).

The index is a dashboard of the selected organisation. Every page is scoped by
``prisma_glow.admin.scoping``; users with several memberships switch organisation from the
header. The page map (for the browser tests) is in ``prisma_glow.admin``.
"""

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import include, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme


class PrismaGlowAdminSite(admin.AdminSite):
    site_header = "Prisma Glow"
    site_title = "Prisma Glow"
    index_title = "Dashboard"
    site_url = None  # "/" is the admin itself; the header links to the console and the API docs
    index_template = "admin/dashboard.html"

    def get_urls(self):
        # The test console lives in agents/console/ and is mounted under /admin/console/.
        custom = [
            path("console/", include("agents.console.urls")),
            path(
                "switch-organization/",
                self.admin_view(self.switch_organization),
                name="switch_organization",
            ),
        ]
        return custom + super().get_urls()

    def each_context(self, request):
        from prisma_glow.admin.scoping import get_admin_access

        context = super().each_context(request)
        access = get_admin_access(request)
        context["admin_access"] = access
        context["current_organization"] = access.organization
        return context

    def index(self, request, extra_context=None):
        """The dashboard: agents, executions per day, latency, tokens and cost, guardrail blocks."""
        from agents.models import Agent, Execution, ExecutionStep
        from prisma_glow.admin.dashboard import dashboard_context
        from prisma_glow.admin.scoping import get_admin_access

        access = get_admin_access(request)
        context = {**self.each_context(request), "title": self.index_title, "subtitle": None}
        if access.organization is not None and access.can_view:
            # The dashboard always describes one organisation, superusers included.
            org = access.organization
            context.update(
                dashboard_context(
                    agents=Agent.objects.filter(organization=org),
                    executions=Execution.objects.filter(organization=org),
                    steps=ExecutionStep.objects.filter(execution__organization=org),
                )
            )
            context["has_dashboard"] = True
        context["app_list"] = self.get_app_list(request)
        context.update(extra_context or {})
        request.current_app = self.name
        return TemplateResponse(request, self.index_template, context)

    def switch_organization(self, request):
        """Select which of the user's organisations the admin shows (POST, from the header)."""
        from prisma_glow.admin.scoping import SESSION_KEY, get_admin_access

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        access = get_admin_access(request)
        try:
            wanted = int(request.POST.get("organization", ""))
        except ValueError:
            wanted = None
        chosen = next((o for o in access.organizations if o.pk == wanted), None)
        if chosen is None:
            messages.error(request, "You are not a member of that organisation.")
        else:
            request.session[SESSION_KEY] = chosen.pk
            messages.success(request, f"Now working in {chosen.name}.")
        target = request.POST.get("next") or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("admin:index")
        # Object pages of the previous organisation would answer 404: land on the list instead.
        return HttpResponseRedirect(target if chosen is None else _list_of(target))


def _list_of(url: str) -> str:
    """``/admin/app/model/12/change/`` → ``/admin/app/model/``; other URLs unchanged."""
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) >= 4 and parts[0] == "admin" and parts[3].isdigit():
        return "/" + "/".join(parts[:3]) + "/"
    return url.split("?")[0]
