"""ASVS 5.0 level 2, chapter V8 (Authorization), as far as API keys go: who may create, rotate and
read keys, and that no organisation reaches another's."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from prisma_glow.tenancy.models import APIKey
from tests.conftest import client_for
from tests.factories import APIKeyFactory
from tests.support.api import assert_error

URL = "/api/v1/api-keys/"


def test_v8_2_1_only_admins_create_or_rotate_keys(org, viewer, editor, admin_user, api_key):
    """ASVS 5.0 V8.2.1: creating and rotating keys is restricted to a signed-in admin — a viewer, an
    editor and a key without the admin scope get 403, a key with it 403 ``session_required`` (issue 16:
    keys never create or rotate keys), and nothing is created."""
    target = APIKeyFactory(organization=org, scopes=["read"])
    write_key = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    before = APIKey.objects.count()
    for client in (
        client_for(viewer),
        client_for(editor),
        client_for(key=write_key.plaintext),
        client_for(key=api_key.plaintext),
    ):
        assert_error(client.post(URL, {"name": "x", "scopes": ["admin"]}, format="json"), 403)
        assert_error(client.post(f"{URL}{target.pk}/rotate/", {}, format="json"), 403)
    assert APIKey.objects.count() == before
    assert (
        client_for(admin_user).post(URL, {"name": "x", "scopes": ["read"]}, format="json").status_code == 201
    )


def test_v8_2_2_and_v8_4_1_another_organisations_key_is_a_404_and_stays_unchanged(org, other_org, admin_user):
    """ASVS 5.0 V8.2.2 / V8.4.1: an admin of one organisation cannot read, rotate or revoke another
    organisation's key (404, as if it did not exist), and its expiry and state are untouched."""
    theirs = APIKeyFactory(
        organization=other_org, scopes=["read"], expires_at=timezone.now() + timedelta(days=3)
    )
    expiry = theirs.expires_at
    client = client_for(admin_user)
    assert_error(client.get(f"{URL}{theirs.pk}/"), 404)
    assert_error(client.post(f"{URL}{theirs.pk}/rotate/", {"grace_seconds": 60}, format="json"), 404)
    assert_error(client.post(f"{URL}{theirs.pk}/revoke/"), 404)
    assert theirs.pk not in [row["id"] for row in client.get(URL).json()["results"]]
    theirs.refresh_from_db()
    assert theirs.expires_at == expiry and theirs.revoked_at is None
    assert not APIKey.objects.filter(rotated_from=theirs).exists()


def test_v8_4_1_a_key_acts_for_its_own_organisation_only(org, other_org):
    """ASVS 5.0 V8.4.1: a key authenticates for its own organisation; its expiry headers describe it
    alone, and the X-Organization header does not move it to another organisation."""
    key = APIKeyFactory(organization=org, scopes=["read"])
    response = client_for(key=key.plaintext).get("/api/v1/organization/", HTTP_X_ORGANIZATION=other_org.slug)
    assert response.status_code == 200 and response.json()["slug"] == org.slug
