"""Authentication: API keys (hashed, scoped, expiring, revocable) and the admin session with CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone

from prisma_glow.tenancy.models import APIKey
from tests.conftest import client_for
from tests.factories import APIKeyFactory, UserFactory
from tests.support.api import assert_error

URL = "/api/v1/organization/"


def test_valid_key_authenticates_and_records_last_use(org):
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = client_for(key=key.plaintext)
    assert client.get(URL).status_code == 200
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    assert client.get(URL).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == first_use  # written at most once a minute


@pytest.mark.parametrize(
    "header, reason",
    [
        ("Api-Key garbage", "Malformed"),
        ("Api-Key pg_short.secret", "Malformed"),
        ("Api-Key pg_00000000.secret", "Invalid"),
        ("Api-Key ", "Malformed"),
        ("api-key pg_00000000.x", "Invalid"),
    ],
)
def test_bad_keys_401_with_reason(db, header, reason):
    response = Client(HTTP_AUTHORIZATION=header).get(URL)
    body = assert_error(response, 401)
    assert reason in body["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


def test_wrong_secret_for_a_real_prefix_401(org):
    key = APIKeyFactory(organization=org, scopes=["read"])
    prefix = key.plaintext.split(".")[0]
    assert_error(client_for(key=prefix + ".not-the-secret").get(URL), 401)


def test_non_ascii_authorization_header_401(db):
    assert_error(Client(HTTP_AUTHORIZATION="Api-Key pg_é".encode().decode("latin-1")).get(URL), 401)


def test_other_schemes_are_not_keys(db):
    body = assert_error(Client(HTTP_AUTHORIZATION="Bearer abc").get(URL), 401)
    assert body["code"] == "not_authenticated"


def test_expired_and_revoked_keys_401(org):
    expired = APIKeyFactory(
        organization=org, scopes=["read"], expires_at=timezone.now() - timedelta(seconds=1)
    )
    revoked = APIKeyFactory(organization=org, scopes=["read"], revoked_at=timezone.now())
    future = APIKeyFactory(organization=org, scopes=["read"], expires_at=timezone.now() + timedelta(days=1))
    assert "expired" in assert_error(client_for(key=expired.plaintext).get(URL), 401)["message"]
    assert "revoked" in assert_error(client_for(key=revoked.plaintext).get(URL), 401)["message"]
    assert client_for(key=future.plaintext).get(URL).status_code == 200


def test_keys_are_stored_hashed(org):
    key = APIKeyFactory(organization=org, scopes=["read"])
    secret = key.plaintext.split(".", 1)[1]
    row = APIKey.objects.filter(pk=key.pk).values().get()
    assert secret not in str(row)


def test_scopes_gate_reads_and_writes(org):
    """read reads; write writes domain objects; admin implies every scope."""
    read_only = client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)
    execute_only = client_for(key=APIKeyFactory(organization=org, scopes=["execute"]).plaintext)
    admin = client_for(key=APIKeyFactory(organization=org, scopes=["admin"]).plaintext)
    assert read_only.get("/api/v1/members/").status_code == 200
    assert "'read' scope" in assert_error(execute_only.get("/api/v1/members/"), 403)["message"]
    assert_error(read_only.post("/api/v1/members/", {"user": "x"}, format="json"), 403)
    assert admin.get("/api/v1/audit-events/").status_code == 200


def test_member_without_membership_403(db):
    user = UserFactory(username="drifter")
    body = assert_error(client_for(user).get(URL), 403)
    assert "not a member" in body["message"]


def test_session_requires_csrf_on_writes(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(URL).status_code == 200
    body = assert_error(client.patch(URL, '{"name": "Renamed"}', content_type="application/json"), 403)
    assert "CSRF" in body["message"]
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.patch(
        URL, '{"name": "Renamed"}', content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


def test_key_for_one_org_never_sees_another(org, other_org):
    """A key acts for its own organisation only; the X-Organization header does not change that."""
    from tests.factories import MembershipFactory

    foreign = MembershipFactory(organization=other_org, role="viewer")
    key = APIKeyFactory(organization=org, scopes=["admin"])
    client = client_for(key=key.plaintext)
    assert_error(client.get(f"/api/v1/members/{foreign.pk}/"), 404)
    assert client.get(URL, HTTP_X_ORGANIZATION="other-firm").json()["slug"] == "demo-firm"
