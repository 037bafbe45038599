"""Who may open which staff page: members of each role, non-staff users, other organisations."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.admin.conftest import login
from tests.factories import AgentFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_ONLY = {"api-keys", "api-key", "audit-log", "audit-event"}
WRITE_PAGES = {"persona-editor", "persona-new", "tool-test"}


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def test_every_page_answers_200_to_the_owner_and_is_csp_clean(owner_client, world):
    """The dashboard and every page of the organisation's objects render for an owner, and work under
    the strict CSP: scripts and styles come from static files only (no inline script, style or handler)."""
    pages = {"dashboard": "/admin/", "wizard": "/admin/agents/agent/wizard/basics/", **world.pages()}
    failures = {}
    for name, url in pages.items():
        response = owner_client.get(url)
        if response.status_code != 200:
            failures[name] = (url, response.status_code)
            continue
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), name
        assert ' style="' not in html and "<style" not in html, name
        assert not INLINE_HANDLER.search(html), name
        assert "django_htmx/htmx-2.min.js" in html and "admin_ui/admin_ui.css" in html, name
        assert "default-src 'self'" in response.headers.get("Content-Security-Policy", ""), name
    assert not failures


def test_editor_sees_domain_pages_but_not_api_keys(staff_client, world):
    """An editor opens every domain page; API keys and the audit log are for admins (403), as in the API."""
    for name, url in world.pages().items():
        expected = 403 if name in ADMIN_ONLY else 200
        assert staff_client.get(url).status_code == expected, name


def test_viewer_reads_but_cannot_open_writing_pages(viewer_admin_client, world):
    """A viewer reads lists and objects; the wizard, persona editor and tool runner answer 403."""
    for name, url in world.pages().items():
        expected = 403 if name in ADMIN_ONLY | WRITE_PAGES else 200
        assert viewer_admin_client.get(url).status_code == expected, name
    assert viewer_admin_client.get("/admin/agents/agent/wizard/basics/").status_code == 403


def test_viewer_cannot_change_an_agent(viewer_admin_client, world):
    """The change form is read-only for viewers and a POST is refused."""
    response = viewer_admin_client.post(f"/admin/agents/agent/{world.agent.pk}/change/", {"name": "Hacked"})
    assert response.status_code == 403
    world.agent.refresh_from_db()
    assert world.agent.name != "Hacked"


def test_non_staff_and_anonymous_users_are_sent_to_the_login(non_staff_client, world):
    """Django's default: only staff sign in to the admin; others (even an owner) go to the login page."""
    pages = {"dashboard": "/admin/", "wizard": "/admin/agents/agent/wizard/", **world.pages()}
    for client in (non_staff_client, Client()):
        for name, url in pages.items():
            response = client.get(url)
            assert response.status_code == 302, name
            assert response["Location"].startswith("/admin/login/"), name


def test_another_organisations_objects_answer_404(owner_client, world, other_world):
    """Every object page of another organisation is a 404, never a 403 or a redirect."""
    for name, url in other_world.object_pages().items():
        assert owner_client.get(url).status_code == 404, (name, url)


def test_another_organisations_objects_answer_404_to_posts(owner_client, world, other_world):
    a = other_world.agent.pk
    for url in [
        f"/admin/agents/agent/{a}/lifecycle/activate/",
        f"/admin/agents/agent/{a}/clone/",
        f"/admin/agents/agent/{a}/personas/{other_world.persona2.pk}/activate/",
        f"/admin/agents/agent/{a}/personas/preview/",
        f"/admin/tenancy/apikey/{other_world.api_key.pk}/revoke/",
        f"/admin/tenancy/apikey/{other_world.api_key.pk}/rotate/",
        f"/admin/guardrails/guardrail/{other_world.guardrail.pk}/test/",
    ]:
        assert owner_client.post(url, {"name": "x", "text": "x"}).status_code == 404, url
    other_world.api_key.refresh_from_db()
    assert other_world.api_key.revoked_at is None


def test_lists_show_only_the_organisations_rows(owner_client, world, other_world):
    lists = {
        "/admin/agents/agent/": other_world.agent.name,
        "/admin/agents/execution/": other_world.agent.name,
        "/admin/tools/tool/": other_world.tool.name,
        "/admin/guardrails/guardrail/": other_world.guardrail.name,
        "/admin/knowledge/knowledgebase/": other_world.kb.name,
        "/admin/knowledge/document/": other_world.document.title,
        "/admin/agents/modelprovider/": other_world.provider.name,
        "/admin/tenancy/apikey/": other_world.api_key.name,
        "/admin/audit/auditevent/": other_world.agent.name,
        "/admin/tenancy/membership/": "owner-other",
    }
    for url, foreign in lists.items():
        content = owner_client.get(url).content.decode()
        assert foreign not in content, url


def test_foreign_key_choices_and_filters_are_scoped(owner_client, world, other_world):
    """The agent form offers only the organisation's providers and members; filters likewise."""
    content = owner_client.get(f"/admin/agents/agent/{world.agent.pk}/change/").content.decode()
    assert world.provider.name in content
    assert other_world.provider.name not in content
    assert "owner-other" not in content
    registry = owner_client.get("/admin/agents/agent/").content.decode()
    assert "owner-other" not in registry
    executions = owner_client.get("/admin/agents/execution/").content.decode()
    assert other_world.agent.name not in executions


def test_staff_without_membership_sees_an_empty_admin(world):
    """A staff account that belongs to no organisation sees no data, and objects are 404."""
    client = login(UserFactory(username="lonely"))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "not a member of any organisation" in response.content.decode()
    assert client.get(world.pages()["agent-detail"]).status_code == 404
    assert client.get("/admin/agents/agent/").status_code == 403


def test_superuser_sees_every_organisation(world, other_world):
    boss = UserFactory(username="root", is_superuser=True)
    client = login(boss)
    assert client.get(other_world.pages()["agent-detail"]).status_code == 200
    assert other_world.agent.name in client.get("/admin/agents/agent/").content.decode()


def test_organisation_switcher(owner, world, other_world):
    """A member of two organisations switches between them; the pages follow the selection."""
    MembershipFactory(user=owner, organization=other_world.org, role="viewer")
    client = login(owner)
    page = client.get("/admin/").content.decode()
    assert 'name="organization"' in page and other_world.org.name in page
    assert client.get(other_world.pages()["agent-detail"]).status_code == 404
    response = client.post(
        "/admin/switch-organization/",
        {"organization": other_world.org.pk, "next": f"/admin/agents/agent/{world.agent.pk}/overview/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/agents/agent/"
    assert client.get(other_world.pages()["agent-detail"]).status_code == 200
    assert client.get(world.pages()["agent-detail"]).status_code == 404
    # As a viewer there, the wizard is closed.
    assert client.get("/admin/agents/agent/wizard/basics/").status_code == 403


def test_switching_to_a_foreign_organisation_is_refused(owner_client, world, other_world):
    response = owner_client.post(
        "/admin/switch-organization/", {"organization": other_world.org.pk}, follow=True
    )
    assert "not a member of that organisation" in response.content.decode()
    assert owner_client.get(other_world.pages()["agent-detail"]).status_code == 404
    assert owner_client.get("/admin/switch-organization/").status_code == 405


def test_switcher_ignores_an_external_next_url(owner, world, other_world):
    MembershipFactory(user=owner, organization=other_world.org, role="viewer")
    client = login(owner)
    response = client.post(
        "/admin/switch-organization/", {"organization": other_world.org.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/admin/"


def test_agent_names_from_other_organisations_never_leak_into_the_dashboard(owner_client, world, other_world):
    AgentFactory(organization=other_world.org, name="Secret merger bot", status="active")
    html = owner_client.get("/admin/").content.decode()
    assert "Secret merger bot" not in html


def test_empty_lists_say_so(staff_client, org):
    html = staff_client.get("/admin/guardrails/guardrail/").content.decode()
    assert "No guardrails yet." in html and "/admin/guardrails/guardrail/add/" in html
    html = staff_client.get("/admin/guardrails/guardrail/?q=zebra").content.decode()
    assert "Nothing matches “zebra”" in html
