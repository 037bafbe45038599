"""No page of the staff UI answers with Django's bare "403 Forbidden": every refusal under /admin/ is
a page of the admin's own layout, with the reason and a way back (``prisma_glow.admin.refusal``)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.factories import MembershipFactory, UserFactory
from tests.platform.test_policy_doors import _patterns
from tests.support.admin import World, login

pytestmark = pytest.mark.django_db

# Signing out would end the walk; the rest is visited with GET and with POST.
SKIPPED = {"admin:logout"}


def admin_layout(html: str) -> bool:
    return (
        'id="header"' in html
        and "admin_ui/admin_ui.css" in html
        and 'href="/admin/"' in html  # the way back: the dashboard
        and "403 Forbidden" not in html
    )


def every_admin_url(world, user) -> list[str]:
    """Every named staff-UI URL, its arguments filled with ``world``'s objects."""
    from django.urls import get_resolver

    objects = {
        "agents_agent": world.agent,
        "agents_execution": world.execution,
        "agents_conversation": world.conversation,
        "agents_feedback": world.feedback,
        "agents_learningexample": world.example,
        "agents_modelprovider": world.provider,
        "tools_tool": world.tool,
        "guardrails_guardrail": world.guardrail,
        "knowledge_knowledgebase": world.kb,
        "knowledge_document": world.document,
        "tenancy_organization": world.org,
        "tenancy_membership": world.membership,
        "tenancy_apikey": world.api_key,
        "tenancy_invitation": world.invitation,
        "audit_auditevent": world.audit_event,
        "auth_user": user,
    }
    values = {
        "agent_id": world.agent.pk,
        "persona_id": world.persona.pk,
        "tool_id": world.tool.pk,
        "guardrail_id": world.guardrail.pk,
        "kb_id": world.kb.pk,
        "key_id": world.api_key.pk,
        "invitation_id": world.invitation.pk,
        "membership_id": world.membership.pk,
        "execution_id": world.execution.pk,
        "step": "basics",
        "kind": "tools",
        "transition": "activate",
        "app_label": "tenancy",
        "id": user.pk,
    }
    urls = []
    for route, name, _ in _patterns(get_resolver().url_patterns):
        if not route.startswith("admin/") or name in SKIPPED or name.endswith("None"):
            continue
        if name.startswith("admin:otp_"):
            # django-otp's own device admin, registered with the package; the second-factor work
            # decides its fate (its object pages answer 500 for a missing device).
            continue
        params = re.findall(r"<(?:\w+:)?(\w+)>", route)
        short = name.split(":")[-1]
        model = next((key for key in objects if short.startswith(key + "_")), None)
        kwargs = {}
        for param in params:
            if param == "object_id":
                kwargs[param] = objects[model].pk if model else 1
            elif param in values:
                kwargs[param] = values[param]
            else:
                kwargs[param] = 1
        try:
            urls.append(reverse(name, kwargs=kwargs))
        except NoReverseMatch:
            continue
    return sorted(set(urls))


@pytest.fixture
def world(org):
    owner = UserFactory(username="refusal-owner")
    MembershipFactory(user=owner, organization=org, role="owner")
    return World(org, owner)


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_every_refusal_under_admin_has_the_admins_layout(org, world, role):
    """ASVS 5.0 V8 (and the issue's "no bare 403"): walking every admin page as a viewer or an editor,
    with GET and POST, every 403 is the admin's page with a reason and a link to the dashboard."""
    user = UserFactory(username=f"walker-{role}")
    MembershipFactory(user=user, organization=org, role=role)
    client = login(user)
    bare, refused = [], 0
    for url in every_admin_url(world, user):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code != 403:
                continue
            refused += 1
            html = response.content.decode()
            if not admin_layout(html) or "You cannot do this" not in html:
                bare.append((method, url))
    assert bare == []
    assert refused >= 20  # the walk did meet refusals: API keys, audit log, site administration…


def test_the_refusal_says_why_and_links_back(org, world, viewer):
    client = login(viewer)
    response = client.get("/admin/tenancy/apikey/", HTTP_REFERER="http://testserver/admin/agents/agent/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "Not allowed" in html and 'href="http://testserver/admin/agents/agent/"' in html
    # Site administration (superusers only): still the admin's page, never Django's bare one.
    response = client.get("/admin/auth/user/")
    assert response.status_code == 403 and admin_layout(response.content.decode())
    # A referrer of another site is not offered as the way back.
    html = client.get("/admin/tenancy/apikey/", HTTP_REFERER="https://evil.example/").content.decode()
    assert "evil.example" not in html


def test_a_refusal_outside_the_admin_keeps_djangos_answer(org, viewer):
    """The API answers refusals with its JSON body; other paths keep Django's default."""
    response = login(viewer).post("/api/v1/api-keys/", {}, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_the_member_page_names_the_user_without_a_link_to_the_superusers_page(owner_client, org, editor):
    """Owners manage members without superuser rights: the member's page shows their name and
    address as text, no link to the user admin (which would be a refusal)."""
    editor.first_name, editor.last_name, editor.email = "Jon", "Tax", "jon@firm.example"
    editor.save()
    membership = editor.memberships.get(organization=org)
    html = owner_client.get(f"/admin/tenancy/membership/{membership.pk}/change/").content.decode()
    assert f"{editor.username} (Jon Tax) — jon@firm.example" in html
    assert "/admin/auth/user/" not in html
    assert (
        owner_client.post(
            f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "viewer"}
        ).status_code
        == 302
    )
    membership.refresh_from_db()
    assert membership.role == "viewer"


def test_removing_a_member_from_the_admin_ends_their_sessions(owner_client, org, editor):
    membership = editor.memberships.get(organization=org)
    theirs = Client()
    theirs.force_login(editor)
    assert theirs.get("/admin/").status_code == 200
    response = owner_client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert theirs.get("/admin/").status_code == 302  # signed out: sent to the login


def test_invitations_show_in_the_walk(world):
    """The walk above covers the invitation pages (a guard against the URL list going stale)."""
    urls = every_admin_url(world, world.membership.user)
    assert f"/admin/tenancy/invitation/{world.invitation.pk}/revoke/" in urls
    assert "/admin/tenancy/invitation/add/" in urls


def test_a_form_too_large_is_said_in_the_admin_layout_and_saves_nothing(org, editor, settings):
    """Pasting more text than DATA_UPLOAD_MAX_MEMORY_SIZE allows: a 400 page of the admin saying what
    happened and what to do (not Django's bare "Bad Request (400)"), and no document."""
    from tests.factories import KnowledgeBaseFactory

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    kb = KnowledgeBaseFactory(organization=org)
    client = Client()
    client.force_login(editor)
    response = client.post(
        f"/admin/knowledge/knowledgebase/{kb.pk}/documents/",
        {"text": "x" * (1024 * 1024 + 1), "text_title": "Too long"},
    )
    html = response.content.decode()
    assert response.status_code == 400 and admin_layout(html)
    assert "more than 1 MB of text" in html and "nothing was saved" in html and "Bad Request" not in html
    assert not kb.documents.exists()


def test_too_many_fields_is_said_in_the_admin_layout(org, editor, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client = Client()
    client.force_login(editor)
    response = client.post("/admin/agents/agent/", {f"_selected_action{i}": str(i) for i in range(20)})
    assert response.status_code == 400 and admin_layout(response.content.decode())
    assert "more than 10 fields" in response.content.decode()


def test_a_bad_request_outside_the_admin_keeps_django_s_answer(client, settings):
    """Anonymous visitors and other paths get Django's own 400 (no admin layout to show them)."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post("/admin/login/", {f"f{i}": str(i) for i in range(20)})
    assert response.status_code == 400 and not admin_layout(response.content.decode())


def test_a_failed_csrf_check_is_said_in_the_admin_layout_and_saves_nothing(org, editor):
    """A form whose CSRF token no longer matches (open too long, another sign-in): a 403 page of the
    admin saying what to do, not Django's bare "403 Forbidden"; nothing is saved."""
    from agents.models import Agent
    from tests.factories import AgentFactory

    agent = AgentFactory(organization=org, name="Before")
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    client.get(f"/admin/agents/agent/{agent.pk}/change/")  # sets the CSRF cookie
    response = client.post(
        f"/admin/agents/agent/{agent.pk}/change/", {"name": "After", "csrfmiddlewaretoken": "x" * 64}
    )
    html = response.content.decode()
    assert response.status_code == 403 and admin_layout(html)
    assert "Reload the page and try again" in html and "CSRF verification failed" not in html
    assert Agent.objects.get(pk=agent.pk).name == "Before"


def test_a_failed_csrf_check_outside_the_admin_or_anonymous_keeps_django_s_answer(org):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    html = response.content.decode()
    assert response.status_code == 403 and "CSRF verification failed" in html and not admin_layout(html)
