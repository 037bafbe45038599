"""API keys over the API: create (secret shown once), rotate with a grace period, revoke."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import APIKey, hash_secret
from tests.conftest import client_for
from tests.factories import APIKeyFactory
from tests.support.api import CreateTests, ListTests, RetrieveTests, assert_error

URL = "/api/v1/api-keys/"


class TestAPIKeyAPI(ListTests, RetrieveTests, CreateTests):
    model = APIKey
    factory = APIKeyFactory
    url = URL
    create_data = {"name": "Client portal", "scopes": ["read", "execute"]}
    invalid_data = {"name": "", "scopes": ["read", "fly"], "expires_at": "2001-01-01T00:00:00Z"}
    read_role = "admin"
    read_scope = "admin"
    write_role = "admin"
    write_scope = None  # keys are created and rotated by people, never by a key

    def make_object(self, organization, parent=None):
        return APIKeyFactory(organization=organization, scopes=["read"])

    def test_create_shows_the_secret_once(self):
        """The full key is in the create response only; the database holds its hash, and it works."""
        response = self.writer().post(URL, self.create_data, format="json")
        assert response.status_code == 201
        body = response.json()
        full_key = body["key"]
        assert full_key.startswith(body["prefix"] + ".")
        stored = APIKey.objects.get(pk=body["id"])
        assert stored.hashed_secret == hash_secret(full_key.split(".", 1)[1])
        assert full_key not in str(AuditEvent.objects.filter(object_id=str(stored.pk)).values())
        assert "key" not in self.reader().get(f"{URL}{stored.pk}/").json()
        assert all("key" not in row for row in self.reader().get(URL).json()["results"])
        new_client = client_for(key=full_key)
        assert new_client.get("/api/v1/organization/").status_code == 200
        assert_error(new_client.post(URL, self.create_data, format="json"), 403)  # no admin scope

    def test_rotate_without_grace_invalidates_the_old_key_at_once(self):
        old = APIKeyFactory(organization=self.org, scopes=["read"])
        response = self.writer().post(f"{URL}{old.pk}/rotate/", {}, format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["rotated_from"] == old.pk and body["scopes"] == ["read"] and body["name"] == old.name
        response = client_for(key=old.plaintext).get("/api/v1/organization/")
        assert "rotated" in assert_error(response, 401)["message"]
        assert client_for(key=body["key"]).get("/api/v1/organization/").status_code == 200
        assert AuditEvent.objects.filter(action="api_key.rotate", object_id=str(old.pk)).exists()

    def test_rotate_with_grace_keeps_the_old_key_until_it_ends(self):
        old = APIKeyFactory(organization=self.org, scopes=["read", "execute"])
        response = self.writer().post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 3600}, format="json")
        assert response.status_code == 201
        old.refresh_from_db()
        assert timedelta(minutes=59) < old.expires_at - timezone.now() <= timedelta(hours=1)
        assert client_for(key=old.plaintext).get("/api/v1/organization/").status_code == 200
        listed = {row["id"]: row for row in self.reader().get(URL).json()["results"]}
        assert listed[old.pk]["rotated_to"] == response.json()["id"]
        APIKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        assert_error(client_for(key=old.plaintext).get("/api/v1/organization/"), 401)
        assert client_for(key=response.json()["key"]).get("/api/v1/organization/").status_code == 200

    def test_rotate_twice_or_revoked_409_and_bad_grace_400(self):
        key = APIKeyFactory(organization=self.org, scopes=["read"])
        client = self.writer()
        assert_error(
            client.post(f"{URL}{key.pk}/rotate/", {"grace_seconds": -1}, format="json"),
            400,
            fields=["grace_seconds"],
        )
        assert client.post(f"{URL}{key.pk}/rotate/", {"grace_seconds": 60}, format="json").status_code == 201
        assert_error(client.post(f"{URL}{key.pk}/rotate/", {}, format="json"), 409)
        revoked = APIKeyFactory(organization=self.org, scopes=["read"], revoked_at=timezone.now())
        assert_error(client.post(f"{URL}{revoked.pk}/rotate/", {}, format="json"), 409)

    def test_revoke(self):
        """A revoked key gets 401 at once; revoking again is a 409; the revocation is audited."""
        key = APIKeyFactory(organization=self.org, scopes=["read"])
        response = self.writer().post(f"{URL}{key.pk}/revoke/")
        assert response.status_code == 200
        assert response.json()["status"] == "revoked"
        assert "revoked" in assert_error(client_for(key=key.plaintext).get(URL), 401)["message"]
        assert_error(self.writer().post(f"{URL}{key.pk}/revoke/"), 409)
        event = AuditEvent.objects.get(action="api_key.revoke", object_id=str(key.pk))
        assert event.before["revoked_at"] is None and event.after["revoked_at"]

    def test_rotate_and_revoke_other_organization_404(self):
        other = APIKeyFactory(organization=self.other_org, scopes=["read"])
        expiry = other.expires_at
        client = self.writer()
        assert_error(client.post(f"{URL}{other.pk}/rotate/", {}, format="json"), 404)
        assert_error(client.post(f"{URL}{other.pk}/revoke/"), 404)
        other.refresh_from_db()
        assert other.revoked_at is None and other.expires_at == expiry

    def test_editor_and_write_key_cannot_rotate_or_revoke(self):
        key = APIKeyFactory(organization=self.org, scopes=["read"])
        for client in (self.client_as("editor"), self.client_as(scopes=["read", "write", "execute"])):
            assert_error(client.post(f"{URL}{key.pk}/rotate/", {}, format="json"), 403)
            assert_error(client.post(f"{URL}{key.pk}/revoke/"), 403)

    def test_a_key_cannot_rotate_itself_but_may_revoke_itself_with_admin_scope(self):
        """Issue 16: a key never creates or rotates keys (a person does: 403 session_required), but an
        integrator whose admin key leaked revokes it; the audit event names the key as the actor."""
        key = APIKeyFactory(organization=self.org, scopes=["admin"])
        client = client_for(key=key.plaintext)
        response = client.post(f"{URL}{key.pk}/rotate/", {"grace_seconds": 60}, format="json")
        assert assert_error(response, 403)["code"] == "session_required"
        assert not APIKey.objects.filter(rotated_from=key).exists()
        assert client.post(f"{URL}{key.pk}/revoke/").status_code == 200
        event = AuditEvent.objects.get(action="api_key.revoke", object_id=str(key.pk))
        assert event.actor_api_key_id == key.pk
