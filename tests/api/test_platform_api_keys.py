"""API keys over the API: create (secret shown once), rotate with a grace period, revoke."""

from __future__ import annotations

from prisma_glow.tenancy.models import APIKey
from tests.api.base import CreateTests, ListTests, RetrieveTests
from tests.factories import APIKeyFactory


class TestAPIKeyAPI(ListTests, RetrieveTests, CreateTests):
    model = APIKey
    factory = APIKeyFactory
    url = "/api/v1/api-keys/"
    create_data = {"name": "Client portal", "scopes": ["read", "execute"]}
    invalid_data = {"name": "", "scopes": ["read", "fly"]}
    read_role = "admin"
    read_scope = "admin"
    write_role = "admin"
    write_scope = "admin"

    def make_object(self, organization, parent=None):
        return APIKeyFactory(organization=organization, scopes=["read"])
