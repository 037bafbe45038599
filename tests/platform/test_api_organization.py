"""The current organisation: every member reads it; only a signed-in owner renames it."""

from __future__ import annotations

from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import APIKeyFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.support.api import assert_error

URL = "/api/v1/organization/"


def test_anonymous_401(org):
    assert_error(client_for().get(URL), 401)
    assert_error(client_for().patch(URL, {"name": "X"}, format="json"), 401)


def test_viewer_reads_own_organisation_with_role(viewer, org, other_org):
    body = client_for(viewer).get(URL).json()
    assert (body["id"], body["slug"], body["role"], body["scopes"]) == (org.pk, "demo-firm", "viewer", None)


def test_key_reads_its_organisation_with_scopes(org):
    key = APIKeyFactory(organization=org, scopes=["read", "execute"])
    body = client_for(key=key.plaintext).get(URL).json()
    assert (body["slug"], body["role"], body["scopes"]) == ("demo-firm", None, ["read", "execute"])


def test_x_organization_header_selects_among_memberships(org, other_org):
    user = UserFactory(username="consultant")
    MembershipFactory(user=user, organization=org, role="viewer")
    MembershipFactory(user=user, organization=other_org, role="editor")
    client = client_for(user)
    assert client.get(URL, HTTP_X_ORGANIZATION="other-firm").json()["role"] == "editor"
    assert client.get(URL, HTTP_X_ORGANIZATION="demo-firm").json()["role"] == "viewer"
    stranger = OrganizationFactory(slug="stranger")
    assert_error(client.get(URL, HTTP_X_ORGANIZATION=stranger.slug), 403)


def test_admin_cannot_update_owner_can(admin_user, owner, org):
    assert_error(client_for(admin_user).patch(URL, {"name": "Renamed"}, format="json"), 403)
    assert_error(
        client_for(key=APIKeyFactory(organization=org, scopes=["write"]).plaintext).patch(
            URL, {"name": "Renamed"}, format="json"
        ),
        403,
    )
    # An admin could otherwise make an admin-scoped key and rename the organisation through it.
    admin_key = APIKeyFactory(organization=org, scopes=["admin"]).plaintext
    response = client_for(key=admin_key).patch(URL, {"name": "Renamed"}, format="json")
    assert_error(response, 403)
    org.refresh_from_db()
    assert org.name == "Demo Firm"
    response = client_for(owner).patch(URL, {"name": "Demo Firm LLP"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Demo Firm LLP"
    event = AuditEvent.objects.get(action="organization.update")
    assert (event.before["name"], event.after["name"]) == ("Demo Firm", "Demo Firm LLP")


def test_update_validation(owner, org, other_org):
    client = client_for(owner)
    assert_error(client.patch(URL, {"slug": "other-firm"}, format="json"), 409, fields=["slug"])
    assert_error(
        client.put(URL, {"name": "", "slug": "not a slug"}, format="json"), 400, fields=["name", "slug"]
    )
    org.refresh_from_db()
    assert org.slug == "demo-firm"
