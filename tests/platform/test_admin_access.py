"""Who may open which staff page: members of each role, non-staff users, other organisations."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import AgentFactory, MembershipFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

ADMIN_ONLY = {
    "api-keys",
    "api-key",
    "audit-log",
    "audit-event",
    "invitations",
    "invitation",
    "invite",
    "budgets",
    "budget",
}
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


# --- One policy for both doors: the escalations of the security review (issue 13, finding 2) ------------


def _membership(user, org):
    from prisma_glow.tenancy.models import Membership

    return Membership.objects.get(user=user, organization=org)


def test_an_admin_cannot_promote_themself_to_owner(admin_role_client, admin_user, org):
    """The role menu offers an admin no "owner", and a posted "owner" is refused and not applied."""
    own = _membership(admin_user, org)
    url = f"/admin/tenancy/membership/{own.pk}/change/"
    form = admin_role_client.get(url).content.decode()
    assert 'value="admin"' in form and 'value="owner"' not in form
    response = admin_role_client.post(url, {"role": "owner"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    own.refresh_from_db()
    assert own.role == "admin"


def test_an_admin_cannot_demote_or_delete_the_owner(admin_role_client, owner, org):
    """An owner's membership is read-only to an admin: a change or a deletion is a 403."""
    owners = _membership(owner, org)
    change = f"/admin/tenancy/membership/{owners.pk}/change/"
    assert admin_role_client.get(change).status_code == 200  # read-only view
    assert admin_role_client.post(change, {"role": "viewer"}).status_code == 403
    delete = f"/admin/tenancy/membership/{owners.pk}/delete/"
    assert admin_role_client.get(delete).status_code == 403
    assert admin_role_client.post(delete, {"post": "yes"}).status_code == 403
    owners.refresh_from_db()
    assert owners.role == "owner"


def test_an_admin_cannot_invite_an_owner_but_invites_an_editor(admin_role_client, org, mailoutbox):
    """ "Add member" leads to the invitation form, which offers roles up to admin; "owner" is refused,
    an editor is invited (members join by accepting, never by being attached)."""
    from prisma_glow.tenancy.models import Invitation

    response = admin_role_client.get("/admin/tenancy/membership/add/")
    assert response.status_code == 302 and response["Location"] == "/admin/tenancy/invitation/add/"
    form = admin_role_client.get("/admin/tenancy/invitation/add/").content.decode()
    assert 'value="owner"' not in form and 'value="editor"' in form
    response = admin_role_client.post(
        "/admin/tenancy/invitation/add/", {"email": "newcomer@firm.example", "role": "owner"}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Invitation.objects.exists() and mailoutbox == []
    response = admin_role_client.post(
        "/admin/tenancy/invitation/add/", {"email": "newcomer@firm.example", "role": "editor"}
    )
    assert response.status_code == 200 and "Invitation sent" in response.content.decode()
    assert Invitation.objects.get(organization=org).role == "editor"
    assert mailoutbox[0].to == ["newcomer@firm.example"]


def test_an_admin_cannot_rename_the_organisation(admin_role_client, org):
    """The organisation page is read-only to an admin; a POST is a 403 and changes nothing."""
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    page = admin_role_client.get(url)
    assert page.status_code == 200 and 'name="name"' not in page.content.decode()
    assert admin_role_client.post(url, {"name": "Taken over", "slug": "taken"}).status_code == 403
    org.refresh_from_db()
    assert (org.name, org.slug) == ("Demo Firm", "demo-firm")


def test_the_owner_manages_owners_and_the_organisation(owner_client, owner, admin_user, org):
    """What an admin is refused, the owner does: promote to owner, demote, rename."""
    admins = _membership(admin_user, org)
    url = f"/admin/tenancy/membership/{admins.pk}/change/"
    assert 'value="owner"' in owner_client.get(url).content.decode()
    assert owner_client.post(url, {"role": "owner"}).status_code == 302
    admins.refresh_from_db()
    assert admins.role == "owner"
    assert owner_client.post(url, {"role": "editor"}).status_code == 302
    admins.refresh_from_db()
    assert admins.role == "editor"
    response = owner_client.post(
        f"/admin/tenancy/organization/{org.pk}/change/",
        {"name": "Demo Firm LLP", "slug": "demo-firm", "currency": "EUR"},
    )
    assert response.status_code == 302


def test_the_audit_log_needs_the_admin_role_as_in_the_api(
    viewer_admin_client, staff_client, admin_role_client, world
):
    """Viewers and editors get the admin's 403 page for the log and its events; admins read them."""
    for client in (viewer_admin_client, staff_client):
        assert client.get("/admin/audit/auditevent/").status_code == 403
        assert client.get(world.pages()["audit-event"]).status_code == 403
    assert admin_role_client.get("/admin/audit/auditevent/").status_code == 200
    assert admin_role_client.get(world.pages()["audit-event"]).status_code == 200


def test_another_organisations_members_and_organisation_answer_404(
    owner_client, admin_role_client, other_world
):
    """The policy is asked after scoping: another organisation's rows stay 404 for every role."""
    member = f"/admin/tenancy/membership/{other_world.membership.pk}"
    for client in (owner_client, admin_role_client):
        assert client.get(f"{member}/change/").status_code == 404
        assert client.post(f"{member}/change/", {"role": "viewer"}).status_code == 404
        assert client.post(f"{member}/delete/", {"post": "yes"}).status_code == 404
        assert client.get(f"/admin/tenancy/organization/{other_world.org.pk}/change/").status_code == 404
    other_world.membership.refresh_from_db()
    assert other_world.membership.role == "owner"


def test_history_pages_are_a_change_log_and_need_what_the_audit_log_needs(
    viewer_admin_client, staff_client, admin_role_client, world
):
    """An object's history names who changed which fields and when: viewers and editors, who may not
    read the audit log in either door, get the admin's 403 page; admins read it."""
    agent_history = world.pages()["agent-settings"].replace("/change/", "/history/")
    membership_history = (
        f"/admin/tenancy/membership/{world.org.memberships.order_by('pk').first().pk}/history/"
    )
    for client in (viewer_admin_client, staff_client):
        assert client.get(agent_history).status_code == 403
        assert client.get(membership_history).status_code == 403
    assert admin_role_client.get(agent_history).status_code == 200
    assert admin_role_client.get(membership_history).status_code == 200
