"""The staff UI: a customised AdminSite (dashboard, organisation-scoped pages, switching organisation).

The index is a dashboard of the selected organisation, made of the panels apps contribute
(``register_dashboard_panel``); apps mount their own pages beside the model pages with
``register_urls`` (the agents app's test console, /admin/console/, with its link in the header). Apps do both from their
``admin`` module, which the admin's autodiscovery imports before any URL is resolved, so this
module imports no app. The site's own pages are switching organisation and the staff guide
(/admin/guide/, ``prisma_glow.admin.guide``, linked from the header). Every page is scoped by
``prisma_glow.admin.scoping``; users with several memberships switch organisation from the header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from prisma_glow.admin import guide
from prisma_glow.admin.period import parse_period
from prisma_glow.admin.scoping import SESSION_KEY, get_admin_access


@dataclass(frozen=True)
class DashboardPanel:
    """One section of the dashboard.

    ``context(request, organization)`` returns the variables ``template`` reads; the site calls it only
    when the user may view ``organization``, and merges the variables into the index's context (a
    name another panel or the site already uses is refused: prefix them by panel). ``template`` is
    included in the index's page in ``order`` (then registration order); it loads its own tag
    libraries. Panels run on every visit of the index: keep their queries few and constant.

    A panel registered with ``uses_period=True`` describes the dashboard's date range: it is called
    ``context(request, organization, period=period)`` with the ``prisma_glow.admin.period.Period``
    the user chose (today, 7 or 30 days, this month, or custom days). The page shows the range's
    picker above the panels (``dashboard_period`` in the context).
    """

    name: str
    template: str
    context: Callable[..., dict]
    order: int = 100
    uses_period: bool = False


class PrismaGlowAdminSite(admin.AdminSite):
    site_header = "Prisma Glow"
    site_title = "Prisma Glow"
    index_title = "Dashboard"
    site_url = None  # "/" is the admin itself; the header links to the console and the API docs
    index_template = "admin/dashboard.html"

    def __init__(self, name="admin"):
        super().__init__(name)
        self._dashboard_panels: dict[str, DashboardPanel] = {}
        self._app_urls: list = []
        self._header_links: list[tuple[str, str]] = []

    # --- what apps contribute ------------------------------------------------------------------
    def register_dashboard_panel(
        self,
        name: str,
        *,
        template: str,
        context: Callable[..., dict],
        order: int = 100,
        uses_period: bool = False,
    ) -> DashboardPanel:
        """Add a panel to the dashboard (see ``DashboardPanel``); a name is registered once."""
        if name in self._dashboard_panels:
            raise ImproperlyConfigured(f"A dashboard panel named {name!r} is already registered.")
        panel = DashboardPanel(
            name=name, template=template, context=context, order=order, uses_period=uses_period
        )
        self._dashboard_panels[name] = panel
        return panel

    def unregister_dashboard_panel(self, name: str) -> None:
        self._dashboard_panels.pop(name)

    def dashboard_panels(self) -> list[DashboardPanel]:
        """The registered panels in page order."""
        return sorted(self._dashboard_panels.values(), key=lambda panel: panel.order)

    def register_urls(self, urlpatterns: list, *, header_link: tuple[str, str] | None = None) -> None:
        """Mount an app's own pages under the site's root (before the model pages), e.g.
        ``site.register_urls([path("console/", include("agents.console.urls"))],
        header_link=("Test console", "admin:console:index"))``; ``header_link`` (label, URL name) puts
        a link to them in every page's header, for users who may view the organisation."""
        self._app_urls.extend(urlpatterns)
        if header_link is not None:
            self._header_links.append(header_link)

    # --- pages ---------------------------------------------------------------------------------
    def get_urls(self):
        custom = [
            *self._app_urls,
            path(
                "switch-organization/",
                self.admin_view(self.switch_organization),
                name="switch_organization",
            ),
            path("guide/", self.admin_view(guide.guide_page), name="guide"),
            # Cacheable (admin_view would add never_cache): the browser keeps a screenshot for an hour.
            path(
                "guide/images/<path:name>",
                self.admin_view(guide.guide_image, cacheable=True),
                name="guide_image",
            ),
        ]
        return custom + super().get_urls()

    def each_context(self, request):
        context = super().each_context(request)
        access = get_admin_access(request)
        context["admin_access"] = access
        context["current_organization"] = access.organization
        # The apps' pages, then the site's own staff guide (beside the API docs, which follow).
        links = [*self._header_links, ("Guide", "admin:guide")]
        context["header_links"] = [(label, reverse(name)) for label, name in links]
        # The header offers to set up a second factor to whoever signed in without one (a session
        # flag set at login: no query on every page).
        context["offer_second_factor"] = bool(getattr(request, "session", {}).get("_pg_no_factor"))
        return context

    def login(self, request, extra_context=None):
        """The login's password step; a user with a second factor then gives a code
        (``prisma_glow.accounts.views``: no session is signed in before the code)."""
        from prisma_glow.accounts.views import login

        return login(self, request, extra_context)

    def index(self, request, extra_context=None):
        """The dashboard: the registered panels, for the selected organisation."""
        access = get_admin_access(request)
        context = {**self.each_context(request), "title": self.index_title, "subtitle": None}
        if access.organization is not None and access.can_view:
            # The dashboard always describes one organisation, superusers included, over one range.
            period = parse_period(request.GET)
            context["dashboard_period"] = period
            panels = self.dashboard_panels()
            for panel in panels:
                if panel.uses_period:
                    values = panel.context(request, access.organization, period=period)
                else:
                    values = panel.context(request, access.organization)
                clash = sorted(context.keys() & values.keys())
                if clash:
                    raise ImproperlyConfigured(
                        f"Dashboard panel {panel.name!r} sets {', '.join(clash)}, already set by the "
                        "site or another panel; give its variables a prefix of its own."
                    )
                context.update(values)
            context["dashboard_panels"] = panels
            context["has_dashboard"] = True
        context["app_list"] = self.get_app_list(request)
        context.update(extra_context or {})
        request.current_app = self.name
        return TemplateResponse(request, self.index_template, context)

    def switch_organization(self, request):
        """Select which of the user's organisations the admin shows (POST, from the header)."""
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
