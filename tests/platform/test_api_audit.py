"""The audit log over the API: read-only, scoped, cursor-paginated, filterable."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record
from tests.factories import AgentFactory, APIKeyFactory
from tests.support.api import ReadOnlyAPIResourceTests, assert_error, results

URL = "/api/v1/audit-events/"


class TestAuditEventAPI(ReadOnlyAPIResourceTests):
    model = AuditEvent
    url = URL
    read_role = "admin"
    read_scope = "admin"

    def make_object(self, organization, parent=None):
        agent = AgentFactory(organization=organization)
        return audit_record(
            organization=organization,
            action="agent.update",
            actor=self.member("editor", organization),
            obj=agent,
            before={"name": "Old"},
            after={"name": agent.name},
        )

    def test_read_only(self):
        event = self.make_object(self.org)
        client = self.client_as("owner")
        assert_error(client.post(URL, {"action": "x"}, format="json"), 405)
        assert_error(client.patch(f"{URL}{event.pk}/", {"action": "x"}, format="json"), 405)
        assert_error(client.delete(f"{URL}{event.pk}/"), 405)

    def test_a_read_or_execute_key_cannot_read_the_audit_log(self):
        """The log holds members' e-mail addresses, addresses and every setting's before and after: a
        client portal's read/execute key reads agents and runs them, not the firm's audit trail."""
        self.make_object(self.org)
        response = self.client_as(scopes=["read", "write", "execute"]).get(URL)
        assert_error(response, 403)
        assert "'admin' scope" in response.json()["message"]

    def test_filters(self):
        agent = AgentFactory(organization=self.org)
        key = APIKeyFactory(organization=self.org, scopes=["write"])
        by_user = audit_record(
            organization=self.org, action="agent.create", actor=self.member("editor"), obj=agent
        )
        by_key = audit_record(organization=self.org, action="agent.update", actor=key, obj=agent)
        other = audit_record(organization=self.org, action="persona.update", actor=None)
        client = self.client_as(scopes=["admin"])

        def ids(**params):
            response = client.get(URL, params)
            assert response.status_code == 200, response.json()
            return [row["id"] for row in results(response)]

        assert ids(action="agent.update") == [by_key.pk]
        assert ids(action_prefix="agent.") == [by_key.pk, by_user.pk]
        assert ids(object_type="agents.agent", object_id=str(agent.pk)) == [by_key.pk, by_user.pk]
        assert ids(actor_api_key=key.pk) == [by_key.pk]
        assert ids(actor_user=by_user.actor_user_id) == [by_user.pk]
        assert ids(actor="api-editor") == [by_user.pk]
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        past = (timezone.now() - timedelta(hours=1)).isoformat()
        assert ids(at_after=past) == [other.pk, by_key.pk, by_user.pk]
        assert ids(at_after=future) == []
        assert ids(at_before=past) == []
        rows = {row["id"]: row for row in results(client.get(URL))}
        assert (rows[by_key.pk]["actor_type"], rows[other.pk]["actor_type"]) == ("api_key", "system")
        assert_error(client.get(URL, {"at_after": "not a date"}), 400)
        assert_error(client.get(URL, {"actor_user": "abc"}), 400)

    def test_cursor_pagination_walks_every_event_once(self):
        created = [self.make_object(self.org) for _ in range(5)]
        client = self.reader()
        seen, url = [], f"{URL}?page_size=2"
        while url:
            body = client.get(url).json()
            assert "count" not in body
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
        assert seen == sorted((e.pk for e in created), reverse=True)
        assert_error(client.get(URL, {"cursor": "garbage"}), 404)
