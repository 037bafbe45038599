"""ASVS 5.0 level 2, chapter V6 (Authentication), as far as API keys go: every key expires, the
expiry is enforced on every pathway, its holder is told before it ends, and a revoked key stops at once.

The admin login's requirements (second factor, lockout) are other parts of issue 16."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from prisma_glow.api.authentication import EXPIRES_AT_HEADER, EXPIRY_WARNING_HEADER
from prisma_glow.tenancy import services
from prisma_glow.tenancy.models import APIKey
from tests.conftest import client_for
from tests.factories import APIKeyFactory
from tests.support.api import assert_error

DAY = timedelta(days=1)
# One read endpoint, one write endpoint and one execute endpoint: the expiry holds on each.
PATHWAYS = [
    ("get", "/api/v1/organization/"),
    ("get", "/api/v1/agents/"),
    ("post", "/api/v1/agents/1/execute/"),
]


@pytest.mark.parametrize(("method", "url"), PATHWAYS)
def test_v6_3_3_an_expired_key_is_refused_on_every_pathway(org, method, url):
    """ASVS 5.0 V6.3.3: the API key pathway enforces the key's expiry consistently — an expired key
    gets 401 ``api_key_expired`` on reads, writes and executions alike, before any permission check."""
    key = APIKeyFactory(organization=org, scopes=["read", "write", "execute", "admin"])
    APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = getattr(client_for(key=key.plaintext), method)(url, {}, format="json")
    assert assert_error(response, 401)["code"] == "api_key_expired"


def test_v6_3_3_no_key_is_created_without_an_expiry_or_beyond_the_maximum(org, settings):
    """ASVS 5.0 V6.3.3 (and V6.1.3, documented in docs/api.md): the service every door calls gives
    each key an expiry within PRISMA_GLOW_API_KEY_MAX_DAYS and refuses a longer one; the column is NOT
    NULL, so no other path can store a key that never expires."""
    settings.API_KEY_MAX_DAYS = 10
    key, _ = services.api_key_create(organization=org, actor=None, name="k", scopes=["read"])
    assert key.expires_at <= timezone.now() + 10 * DAY
    with pytest.raises(ValidationError):
        services.api_key_create(
            organization=org, actor=None, name="k", scopes=["read"], expires_at=timezone.now() + 11 * DAY
        )
    assert not APIKey._meta.get_field("expires_at").null


def test_v6_4_5_renewal_is_announced_before_the_key_expires(org, admin_role_client):
    """ASVS 5.0 V6.4.5 (level 3, met here): from PRISMA_GLOW_API_KEY_WARN_DAYS (14) before expiry,
    every response to the key carries a warning saying how to rotate it, and the dashboard lists it."""
    key = APIKeyFactory(
        organization=org, name="Portal", scopes=["read"], expires_at=timezone.now() + 10 * DAY
    )
    response = client_for(key=key.plaintext).get("/api/v1/organization/")
    assert response[EXPIRES_AT_HEADER].startswith(f"{key.expires_at.year:04d}-")
    assert "rotate it now" in response[EXPIRY_WARNING_HEADER]
    assert "Portal" in admin_role_client.get("/admin/").content.decode()


def test_v6_5_6_a_revoked_key_stops_at_once(org, owner):
    """ASVS 5.0 V6.5.6 (level 3, met here): a key can be revoked, and the next request with it is
    refused."""
    key = APIKeyFactory(organization=org, scopes=["read"])
    client = client_for(key=key.plaintext)
    assert client.get("/api/v1/organization/").status_code == 200
    services.api_key_revoke(api_key=key, actor=owner)
    assert assert_error(client.get("/api/v1/organization/"), 401)["code"] == "authentication_failed"
