"""Staff pages of the platform: members, API keys, the organisation, the audit log."""

from __future__ import annotations

import pytest

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey
from tests.factories import (
    APIKeyFactory,
    MembershipFactory,
    UserFactory,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db


# --- Members ----------------------------------------------------------------------------------


def test_member_roles_changed_from_the_admin(admin_role_client, org):
    """An admin (no superuser rights) changes a member's role; the change is audited."""
    newcomer = UserFactory(username="jon", email="jon@example.com")
    membership = MembershipFactory(user=newcomer, organization=org, role="editor")
    admin_role_client.post(f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == "viewer"
    assert AuditEvent.objects.filter(action="membership.update").exists()


def test_adding_a_member_means_inviting_them(admin_role_client, org):
    """The members list offers "Invite a colleague"; the old add page leads to the invitation form."""
    page = admin_role_client.get("/admin/tenancy/membership/").content.decode()
    assert "Invite a colleague" in page and "/admin/tenancy/invitation/add/" in page
    response = admin_role_client.get("/admin/tenancy/membership/add/")
    assert response.status_code == 302 and response["Location"] == "/admin/tenancy/invitation/add/"
    form = admin_role_client.post(
        "/admin/tenancy/invitation/add/", {"email": "not an address", "role": "god"}
    )
    html = form.content.decode()
    assert form.status_code == 200
    assert "Enter a valid email address" in html and "Select a valid choice" in html


def test_the_last_owner_cannot_be_demoted_or_removed(org, owner):
    client = login(owner)
    membership = owner.memberships.get(organization=org)
    response = client.post(f"/admin/tenancy/membership/{membership.pk}/change/", {"role": "viewer"})
    assert "last owner" in response.content.decode()
    response = client.post(f"/admin/tenancy/membership/{membership.pk}/delete/", {"post": "yes"}, follow=True)
    assert "last owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_editors_cannot_manage_members(staff_client, org):
    page = staff_client.get("/admin/tenancy/membership/").content.decode()
    assert "/admin/tenancy/membership/add/" not in page and "/admin/tenancy/invitation/add/" not in page
    assert staff_client.get("/admin/tenancy/membership/add/").status_code == 403
    assert staff_client.get("/admin/tenancy/invitation/add/").status_code == 403


# --- API keys ---------------------------------------------------------------------------------


def test_api_key_secret_is_shown_once(admin_role_client, org):
    """Jon's key: created with read and execute; the secret appears once, then only its prefix."""
    response = admin_role_client.post(
        "/admin/tenancy/apikey/add/",
        {"name": "Client portal", "scopes": ["read", "execute"], "expires_at": ""},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = APIKey.objects.get(organization=org, name="Client portal")
    html = response.content.decode()
    full = html.split('id="api-key-secret">')[1].split("</code>")[0]
    prefix, secret = APIKey.split(full)
    assert prefix == key.prefix and key.check_secret(secret) and key.scopes == ["read", "execute"]
    page = admin_role_client.get(f"/admin/tenancy/apikey/{key.pk}/change/").content.decode()
    assert secret not in page and f"pg_{key.prefix}" in page
    listing = admin_role_client.get("/admin/tenancy/apikey/").content.decode()
    assert secret not in listing


def test_api_key_form_validation(admin_role_client, org):
    response = admin_role_client.post("/admin/tenancy/apikey/add/", {"name": "", "scopes": []})
    html = response.content.decode()
    assert html.count("This field is required") >= 2
    response = admin_role_client.post(
        "/admin/tenancy/apikey/add/", {"name": "Old", "scopes": ["read"], "expires_at": "2001-01-01T10:00"}
    )
    assert "The expiry must be in the future" in response.content.decode()
    response = admin_role_client.post("/admin/tenancy/apikey/add/", {"name": "Bad", "scopes": ["root"]})
    assert "Select a valid choice" in response.content.decode()
    assert not APIKey.objects.filter(organization=org).exists()


def test_api_key_rotate_with_grace_then_revoke(admin_role_client, org):
    key = APIKeyFactory(organization=org, name="Portal")
    response = admin_role_client.post(f"/admin/tenancy/apikey/{key.pk}/rotate/", {"grace_minutes": 60})
    html = response.content.decode()
    assert response.status_code == 200 and "The key was rotated" in html
    new = APIKey.objects.get(rotated_from=key)
    assert f"pg_{new.prefix}." in html
    key.refresh_from_db()
    assert key.expires_at is not None and key.is_usable
    again = admin_role_client.post(
        f"/admin/tenancy/apikey/{key.pk}/rotate/", {"grace_minutes": 0}, follow=True
    )
    assert "already been rotated" in again.content.decode()
    bad = admin_role_client.post(
        f"/admin/tenancy/apikey/{new.pk}/rotate/", {"grace_minutes": -5}, follow=True
    )
    assert "greater than or equal to 0" in bad.content.decode()
    admin_role_client.post(f"/admin/tenancy/apikey/{new.pk}/revoke/")
    new.refresh_from_db()
    assert new.revoked_at is not None
    twice = admin_role_client.post(f"/admin/tenancy/apikey/{new.pk}/revoke/", follow=True)
    assert "already revoked" in twice.content.decode()
    assert admin_role_client.get(f"/admin/tenancy/apikey/{new.pk}/revoke/").status_code == 405


def test_editors_cannot_see_or_create_keys(staff_client, org):
    key = APIKeyFactory(organization=org)
    assert staff_client.get("/admin/tenancy/apikey/").status_code == 403
    assert staff_client.get(f"/admin/tenancy/apikey/{key.pk}/change/").status_code == 403
    assert staff_client.post(f"/admin/tenancy/apikey/{key.pk}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


# --- Organisation -----------------------------------------------------------------------------


def test_organisation_settings(owner_client, admin_role_client, staff_client, org):
    """The owner renames the organisation; admins and editors are refused, as in the API."""
    url = f"/admin/tenancy/organization/{org.pk}/change/"
    response = owner_client.post(url, {"name": "Demo Firm LLP", "slug": "demo-firm", "currency": "EUR"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "Demo Firm LLP"
    response = owner_client.post(url, {"name": "", "slug": "bad slug!"})
    html = response.content.decode()
    assert "This field is required" in html and "valid “slug”" in html
    for client in (admin_role_client, staff_client):
        assert client.post(url, {"name": "Hijack", "slug": "demo-firm"}).status_code == 403
    org.refresh_from_db()
    assert org.name == "Demo Firm LLP"


# --- Audit log --------------------------------------------------------------------------------


def test_audit_log_is_read_only_with_before_and_after(admin_role_client, world):
    html = admin_role_client.get(world.pages()["audit-event"]).content.decode()
    assert "agent.update" in html and "pg-del" in html and "pg-add" in html and world.agent.name in html
    listing = admin_role_client.get("/admin/audit/auditevent/?action=agent.update").content.decode()
    assert world.agent.name in listing
    assert admin_role_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert (
        admin_role_client.post(
            world.pages()["audit-event"].replace("change", "delete"), {"post": "yes"}
        ).status_code
        == 403
    )


def test_a_second_org_member_only_sees_their_audit_events(world, other_world):
    outsider = UserFactory(username="auditor")
    MembershipFactory(user=outsider, organization=other_world.org, role="admin")
    client = login(outsider)
    assert client.get(world.pages()["audit-event"]).status_code == 404
    assert client.get(other_world.pages()["audit-event"]).status_code == 200


def test_audit_event_of_a_creation_has_no_before_side(admin_role_client, org, editor):
    from agents import services

    agent = services.agent_create(organization=org, actor=editor, name="Fresh agent")
    event = AuditEvent.objects.get(action="agent.create", object_id=str(agent.pk))
    html = admin_role_client.get(f"/admin/audit/auditevent/{event.pk}/change/").content.decode()
    assert "Fresh agent" in html and "pg-add" in html and 'class="pg-del"' not in html


def test_admin_times_are_to_the_minute_on_a_24_hour_clock(admin_role_client, world):
    """On the hour, en-GB's default says "1 a.m."; the audit partner needs "01:00", and "13:05" not "1:05 p.m."."""
    import datetime

    from django.utils import formats, timezone

    for at, shown in (
        (datetime.datetime(2026, 3, 2, 1, 0, tzinfo=datetime.UTC), "2 Mar 2026 01:00"),
        (datetime.datetime(2026, 3, 2, 13, 5, tzinfo=datetime.UTC), "2 Mar 2026 13:05"),
    ):
        assert formats.localize(at) == shown
    listing = admin_role_client.get("/admin/audit/auditevent/").content.decode()
    assert formats.localize(timezone.localtime(world.audit_event.at)) in listing
    assert "a.m." not in listing and "p.m." not in listing


def test_audit_events_outside_a_request_have_no_address(org, editor):
    """The request's address is only borrowed while it is served: a later event has none."""
    from agents import services

    services.agent_create(organization=org, actor=editor, name="From a script")
    assert AuditEvent.objects.get(action="agent.create", object_repr="From a script").ip is None
