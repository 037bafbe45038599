"""The dashboard is made of the panels apps register with the admin site; the site imports no app."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured

from tests.factories import UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel_templates(settings, tmp_path):
    """A templates folder of the test's own, searched first."""
    templates = [dict(engine) for engine in settings.TEMPLATES]
    templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
    settings.TEMPLATES = templates
    return tmp_path


@pytest.fixture
def extra_panel(panel_templates):
    """Registers a panel as another app would, records whom it was asked for, and removes it after."""
    (panel_templates / "extra_panel.html").write_text(
        '<section class="module" id="extra-panel">Open reviews: {{ extra_open_reviews }}</section>'
    )
    asked = []

    def context(request, organization):
        asked.append(organization)
        return {"extra_open_reviews": 7}

    admin.site.register_dashboard_panel("extra", template="extra_panel.html", context=context, order=5)
    yield asked
    admin.site.unregister_dashboard_panel("extra")


def test_the_agents_panel_is_registered_by_the_agents_app():
    """Tenancy's locked sign-ins (order 5), the activations awaiting approval (order 8), the agents'
    figures (order 10), the agents' budgets (order 15), then tenancy's API keys near expiry."""
    names = [panel.name for panel in admin.site.dashboard_panels()]
    assert names == ["lockout", "activation_requests", "agents", "budgets", "api_keys_expiring"]


def test_a_registered_panel_is_shown_in_its_order_with_its_context(owner_client, org, extra_panel):
    """A panel of order 5 comes before the agents' (order 10) although registered later; its variables
    reach its template and the page's context, asked for the selected organisation."""
    response = owner_client.get("/admin/")
    html = response.content.decode()
    assert response.status_code == 200 and extra_panel == [org]
    assert response.context["extra_open_reviews"] == 7
    assert 'id="extra-panel">Open reviews: 7</section>' in html
    assert html.index('id="extra-panel"') < html.index('aria-label="Figures for This month"')
    assert "runs" in response.context  # the agents' panel is still there


def test_panels_are_not_asked_for_a_user_without_an_organisation(extra_panel):
    """A staff user who belongs to no organisation sees the notice, and no panel runs a query."""
    client = login(UserFactory(username="nobody", is_staff=True))
    html = client.get("/admin/").content.decode()
    assert extra_panel == []
    assert "You are not a member of any organisation yet" in html and "extra-panel" not in html


def test_a_panel_name_is_registered_once(extra_panel):
    with pytest.raises(ImproperlyConfigured, match="'extra' is already registered"):
        admin.site.register_dashboard_panel("extra", template="extra_panel.html", context=lambda r, o: {})


def test_a_panel_may_not_override_a_variable_of_the_site_or_another_panel(owner_client, org, panel_templates):
    """Variables share one context: a panel reusing the agents' ``runs`` is refused, by name."""
    (panel_templates / "clash.html").write_text("{{ runs }}")
    admin.site.register_dashboard_panel(
        "clash", template="clash.html", context=lambda request, organization: {"runs": 0}
    )
    try:
        with pytest.raises(ImproperlyConfigured, match="'clash' sets runs"):
            owner_client.get("/admin/")
    finally:
        admin.site.unregister_dashboard_panel("clash")


def test_the_admin_site_module_imports_no_app():
    """``prisma_glow/admin_site.py`` depends on Django, the standard library and the platform only."""
    tree = ast.parse(Path(settings.BASE_DIR, "prisma_glow", "admin_site.py").read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    allowed = {"django", "prisma_glow", "__future__", *sys.stdlib_module_names}
    assert modules and {m for m in modules if m.split(".")[0] not in allowed} == set()
    for node in ast.walk(tree):  # nor names one in a string (the console is mounted by the agents app)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
            node.body = node.body[1:]
    assert "agents" not in ast.unparse(tree)


def test_the_header_links_to_the_pages_apps_register(staff_client, viewer_admin_client):
    """The test console is the agents app's: it puts its link in the header through the site, and the
    platform's header template names no app's page."""
    assert ("Test console", "/admin/console/") in [
        (label, url) for label, url in staff_client.get("/admin/").context["header_links"]
    ]
    for client in (staff_client, viewer_admin_client):
        assert '<a href="/admin/console/">Test console</a>' in client.get("/admin/").content.decode()
    base_site = Path(settings.PACKAGE_DIR, "templates", "admin", "base_site.html").read_text()
    assert "console" not in base_site


def test_a_user_without_an_organisation_gets_no_app_links():
    client = login(UserFactory(is_staff=True))
    assert "Test console" not in client.get("/admin/").content.decode()
