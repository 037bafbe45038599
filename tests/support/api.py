"""Generic API tests, configured per resource (NetBox's ``APIViewTestCases``, for pytest).

Each mixin tests one verb the same way for every resource: anonymous callers get 401, a too-weak
role or API-key scope gets 403, another organisation's object gets 404, a list holds exactly the
caller's rows, the happy path works and is audited, bad input gets 400 with field messages in the
shared error shape, and a list's query count does not grow with the page.

A flat resource::

    class TestAgentAPI(APIResourceTests):
        model = Agent
        factory = AgentFactory
        url = "/api/v1/agents/"
        create_data = {"name": "VAT adviser", "slug": "vat-adviser", "type": "tax"}
        update_data = {"description": "Answers VAT questions."}
        invalid_data = {"name": "", "type": "nonsense"}      # each key must come back in "errors"

A nested resource (``{parent.pk}`` is formatted with the object made by ``make_parent``)::

    class TestPersonaAPI(APIResourceTests):
        model = Persona
        url = "/api/v1/agents/{parent.pk}/personas/"
        organization_lookup = "agent__organization"
        parent_lookup = "agent"

        def make_parent(self, organization):
            return AgentFactory(organization=organization)

        def make_object(self, organization, parent):
            return PersonaFactory(agent=parent)

Override ``get_create_data(parent)`` / ``get_update_data(obj, parent)`` when the payload refers to
other rows (ids of a tool in the caller's organisation…), ``make_list_objects`` to give the
query-count test related rows, and set ``write_role`` / ``write_scope`` / ``read_role`` /
``read_scope`` / ``audited`` / ``max_list_queries`` when the resource differs from the defaults.
``assert_error(response, status, fields=...)`` checks the shared error shape in specific tests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import ROLE_RANK, Role, Scope
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory

ERROR_KEYS = {"status", "code", "message", "errors"}
ROLES_ASCENDING = sorted(ROLE_RANK, key=ROLE_RANK.get)


def assert_error(response, status: int, *, fields: tuple[str, ...] | list[str] = ()) -> dict:
    """Assert ``response`` is an error of ``status`` in the shared shape, naming ``fields``."""
    assert response.status_code == status, (response.status_code, _body(response))
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errors"], dict), body
    for name, messages in body["errors"].items():
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages), (name, body)
    missing = [f for f in fields if f not in body["errors"]]
    assert not missing, f"no field error for {missing}: {body}"
    return body


def _body(response):
    try:
        return response.json()
    except Exception:
        return response.content[:500]


def results(response) -> list[dict]:
    """The rows of a list response (paginated or not)."""
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def weaker_role(role: str) -> str | None:
    """The role just below ``role``, or None when ``role`` is the lowest."""
    index = ROLES_ASCENDING.index(Role(role))
    return ROLES_ASCENDING[index - 1].value if index > 0 else None


def scopes_without(scope: str | None) -> list[str]:
    """Every scope except ``scope`` (and ``admin``, which implies all)."""
    return [s for s in Scope.values if s not in {scope, Scope.ADMIN}]


class APITestBase:
    """Configuration and helpers shared by the verb mixins."""

    model: type | None = None
    factory: Any = None
    url: str = ""  # the list URL; may contain "{parent.pk}" for nested resources
    lookup_attr: str = "pk"  # the attribute of an object that appears in its detail URL
    response_id_field: str = "id"
    organization_lookup: str = "organization"
    parent_lookup: str | None = None  # for nested resources, the path from the model to the parent

    create_data: dict | None = None
    update_data: dict | None = None
    invalid_data: dict | None = None
    invalid_fields: tuple[str, ...] | None = None  # default: the keys of invalid_data
    write_only_fields: tuple[str, ...] = ()  # sent on write, never returned (secrets)
    unchecked_fields: tuple[str, ...] = ()  # sent in one form, returned in another (a name → an id)

    read_role: str = Role.VIEWER
    read_scope: str = Scope.READ
    write_role: str = Role.EDITOR
    # None: no key may write (a person must: 403 session_required, prisma_glow.policy).
    write_scope: str | None = Scope.WRITE
    audited: bool = True
    max_list_queries: int = 10
    update_method: str = "patch"

    @pytest.fixture(autouse=True)
    def _api_setup(self, org, other_org, django_assert_max_num_queries):
        self.org = org
        self.other_org = other_org
        self.assert_max_queries = django_assert_max_num_queries
        self._members: dict[tuple[int, str], Any] = {}

    # --- hooks ---------------------------------------------------------------------------------

    def make_parent(self, organization):
        """The parent object a nested resource lives under (None for a flat resource)."""
        return None

    def make_object(self, organization, parent=None):
        """One object of the resource in ``organization`` (under ``parent``)."""
        return self.factory(organization=organization)

    def make_list_objects(self, organization, parent, count: int) -> list:
        """``count`` objects for the list and query-count tests; give them related rows here."""
        return [self.make_object(organization, parent) for _ in range(count)]

    def get_create_data(self, parent) -> dict:
        return copy.deepcopy(self.create_data)

    def get_update_data(self, obj, parent) -> dict:
        return copy.deepcopy(self.update_data)

    def get_invalid_data(self, parent) -> dict:
        return copy.deepcopy(self.invalid_data)

    def list_url(self, parent=None) -> str:
        return self.url.format(parent=parent) if parent is not None else self.url

    def detail_url(self, obj, parent=None) -> str:
        return f"{self.list_url(parent)}{getattr(obj, self.lookup_attr)}/"

    def scoped_queryset(self, organization, parent=None):
        """The rows the caller's list must show, exactly."""
        queryset = self.model.objects.filter(**{self.organization_lookup: organization})
        if parent is not None and self.parent_lookup:
            queryset = queryset.filter(**{self.parent_lookup: parent})
        return queryset

    def assert_deleted(self, obj) -> None:
        assert not self.model.objects.filter(pk=obj.pk).exists()

    # --- clients -------------------------------------------------------------------------------

    def member(self, role: str, organization=None):
        """A user with ``role`` in ``organization`` (the caller's by default), made once per test."""
        organization = organization or self.org
        key = (organization.pk, str(role))
        if key not in self._members:
            user = UserFactory(username=f"api-{role}-{organization.slug}")
            MembershipFactory(user=user, organization=organization, role=role)
            self._members[key] = user
        return self._members[key]

    def client_as(self, role: str | None = None, *, scopes: list[str] | None = None, organization=None):
        """A client signed in as a member with ``role``, or sending a key with ``scopes``."""
        client = APIClient()
        if scopes is not None:
            key = APIKeyFactory(organization=organization or self.org, scopes=scopes)
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.plaintext}")
        elif role is not None:
            client.force_authenticate(user=self.member(role, organization))
        return client

    def reader(self) -> APIClient:
        return self.client_as(self.read_role)

    def writer(self) -> APIClient:
        return self.client_as(self.write_role)

    def _clients_that_may_write(self) -> list[APIClient]:
        """An owner, and an admin key unless no key may write."""
        clients = [self.client_as(Role.OWNER)]
        if self.write_scope is not None:
            clients.append(self.client_as(scopes=[Scope.ADMIN]))
        return clients

    def own_and_other(self):
        """``(parent, obj)`` in the caller's organisation and ``(parent, obj)`` in another one."""
        parent = self.make_parent(self.org)
        other_parent = self.make_parent(self.other_org)
        return (parent, self.make_object(self.org, parent)), (
            other_parent,
            self.make_object(self.other_org, other_parent),
        )

    def _audit_exists(self, obj, **filters) -> bool:
        return AuditEvent.objects.filter(
            organization=self.org, object_id=str(obj.pk), object_type=obj._meta.label_lower, **filters
        ).exists()

    def _send(self, client, method: str, url: str, data=None):
        return (
            getattr(client, method)(url, data, format="json")
            if data is not None
            else getattr(client, method)(url)
        )


# --- list ---------------------------------------------------------------------------------------


class ListTests(APITestBase):
    def test_list_anonymous_401(self):
        """An anonymous caller cannot list (401 in the shared error shape)."""
        response = APIClient().get(self.list_url(self.make_parent(self.org)))
        assert_error(response, 401)

    def test_list_too_weak_role_or_scope_403(self):
        """A member below the read role, or a key without the read scope, gets 403."""
        parent = self.make_parent(self.org)
        weaker = weaker_role(self.read_role)
        if weaker is not None:
            assert_error(self.client_as(weaker).get(self.list_url(parent)), 403)
        response = self.client_as(scopes=scopes_without(self.read_scope)).get(self.list_url(parent))
        assert_error(response, 403)

    def test_list_shows_exactly_the_callers_rows(self):
        """The list holds every row of the caller's organisation (and parent) and none of another's."""
        parent = self.make_parent(self.org)
        own = self.make_list_objects(self.org, parent, 2)
        other_parent = self.make_parent(self.other_org)
        other = self.make_list_objects(self.other_org, other_parent, 2)
        for client in (self.reader(), self.client_as(scopes=[self.read_scope])):
            response = client.get(self.list_url(parent), {"page_size": 100})
            assert response.status_code == 200, _body(response)
            ids = [row[self.response_id_field] for row in results(response)]
            assert len(ids) == len(set(ids))
            expected = set(self.scoped_queryset(self.org, parent).values_list("pk", flat=True))
            assert set(ids) == expected
            assert {o.pk for o in own} <= set(ids)
            assert not {o.pk for o in other} & set(ids)

    def test_list_query_count_does_not_grow_with_the_page(self):
        """Listing 2 or 6 rows (with their related rows) takes the same, bounded number of queries."""
        parent = self.make_parent(self.org)
        client = self.reader()
        url = self.list_url(parent)
        self.make_list_objects(self.org, parent, 2)
        assert client.get(url).status_code == 200  # warm-up (first-request caches)
        with CaptureQueriesContext(connection) as small:
            assert client.get(url).status_code == 200
        self.make_list_objects(self.org, parent, 4)
        with self.assert_max_queries(self.max_list_queries):
            with CaptureQueriesContext(connection) as large:
                response = client.get(url)
        assert response.status_code == 200
        assert len(results(response)) >= 6
        assert len(large) == len(small), [q["sql"] for q in large.captured_queries]


# --- retrieve -----------------------------------------------------------------------------------


class RetrieveTests(APITestBase):
    def test_retrieve_anonymous_401(self):
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        assert_error(APIClient().get(self.detail_url(obj, parent)), 401)

    def test_retrieve(self):
        """A reader (member or key) retrieves an object of the organisation."""
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        for client in (self.reader(), self.client_as(scopes=[self.read_scope])):
            response = client.get(self.detail_url(obj, parent))
            assert response.status_code == 200, _body(response)
            assert response.json()[self.response_id_field] == obj.pk

    def test_retrieve_other_organization_404(self):
        """Another organisation's object answers 404, by its own URL or under the caller's parent."""
        (parent, _obj), (other_parent, other) = self.own_and_other()
        for client in (self.client_as(Role.OWNER), self.client_as(scopes=[Scope.ADMIN])):
            assert_error(client.get(self.detail_url(other, other_parent)), 404)
            if parent is not None:
                assert_error(client.get(self.detail_url(other, parent)), 404)


# --- create -------------------------------------------------------------------------------------


class CreateTests(APITestBase):
    def test_create_anonymous_401(self):
        parent = self.make_parent(self.org)
        response = APIClient().post(self.list_url(parent), self.get_create_data(parent), format="json")
        assert_error(response, 401)

    def test_create_too_weak_role_or_scope_403(self):
        """A member below the write role, or a key without the write scope, cannot create."""
        parent = self.make_parent(self.org)
        weaker = weaker_role(self.write_role)
        clients = [self.client_as(scopes=scopes_without(self.write_scope))]
        if weaker is not None:
            clients.append(self.client_as(weaker))
        before = self.model.objects.count()
        for client in clients:
            response = client.post(self.list_url(parent), self.get_create_data(parent), format="json")
            assert_error(response, 403)
        assert self.model.objects.count() == before

    def test_create(self):
        """A writer creates an object in their own organisation; the creation is audited."""
        parent = self.make_parent(self.org)
        data = self.get_create_data(parent)
        response = self.writer().post(self.list_url(parent), data, format="json")
        assert response.status_code == 201, _body(response)
        body = response.json()
        obj = self.scoped_queryset(self.org, parent).get(pk=body[self.response_id_field])
        self.assert_payload_applied(body, data)
        if self.audited:
            assert self._audit_exists(obj), "the creation wrote no audit event"

    def test_create_with_api_key(self):
        """A key with the write scope creates too; the audit event names the key. Where no key may
        write (``write_scope = None``), even an admin key gets 403 ``session_required``."""
        parent = self.make_parent(self.org)
        if self.write_scope is None:
            client = self.client_as(scopes=[Scope.ADMIN])
            before = self.model.objects.count()
            response = client.post(self.list_url(parent), self.get_create_data(parent), format="json")
            assert assert_error(response, 403)["code"] == "session_required"
            assert self.model.objects.count() == before
            return
        response = self.client_as(scopes=[self.write_scope]).post(
            self.list_url(parent), self.get_create_data(parent), format="json"
        )
        assert response.status_code == 201, _body(response)
        obj = self.scoped_queryset(self.org, parent).get(pk=response.json()[self.response_id_field])
        if self.audited:
            assert self._audit_exists(obj, actor_api_key__isnull=False)

    def test_create_invalid_400(self):
        """Bad input gets 400 with a message for each bad field, and creates nothing."""
        if self.invalid_data is None:
            pytest.skip("no invalid_data configured")
        parent = self.make_parent(self.org)
        client = self.writer()
        before = self.model.objects.count()
        response = client.post(self.list_url(parent), self.get_invalid_data(parent), format="json")
        fields = self.invalid_fields if self.invalid_fields is not None else tuple(self.invalid_data)
        assert_error(response, 400, fields=fields)
        assert self.model.objects.count() == before

    def test_create_malformed_body_400(self):
        """A body that is not a JSON object, or holds a NUL character, gets 400 (never 500)."""
        parent = self.make_parent(self.org)
        client = self.writer()
        url = self.list_url(parent)
        assert_error(client.post(url, "{not json", content_type="application/json"), 400)
        assert_error(client.post(url, [1, 2], format="json"), 400)
        data = self.get_create_data(parent)
        text_field = next((k for k, v in data.items() if isinstance(v, str)), None)
        if text_field is not None:
            data[text_field] = data[text_field] + "\x00"
            assert_error(client.post(url, data, format="json"), 400)

    def assert_payload_applied(self, body: dict, data: dict) -> None:
        """Every plain value sent comes back unchanged (write-only fields are never returned)."""
        for name, value in data.items():
            if name in self.write_only_fields:
                assert name not in body, f"write-only field {name} returned"
            elif name in self.unchecked_fields:
                continue
            elif name in body and isinstance(value, (str, int, bool)) and not isinstance(body[name], dict):
                assert body[name] == value, (name, body[name], value)


# --- update -------------------------------------------------------------------------------------


class UpdateTests(APITestBase):
    def test_update_anonymous_401(self):
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        response = self._send(APIClient(), self.update_method, self.detail_url(obj, parent), {})
        assert_error(response, 401)

    def test_update_too_weak_role_or_scope_403(self):
        """A member below the write role, or a key without the write scope, cannot update."""
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        data = self.get_update_data(obj, parent)
        weaker = weaker_role(self.write_role)
        if weaker is not None:
            response = self._send(
                self.client_as(weaker), self.update_method, self.detail_url(obj, parent), data
            )
            assert_error(response, 403)
        response = self._send(
            self.client_as(scopes=scopes_without(self.write_scope)),
            self.update_method,
            self.detail_url(obj, parent),
            data,
        )
        assert_error(response, 403)

    def test_update(self):
        """A writer updates an object; the change is audited with before and after."""
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        data = self.get_update_data(obj, parent)
        response = self._send(self.writer(), self.update_method, self.detail_url(obj, parent), data)
        assert response.status_code == 200, _body(response)
        CreateTests.assert_payload_applied(self, response.json(), data)
        if self.audited:
            assert AuditEvent.objects.filter(organization=self.org, before__isnull=False).exists()

    def test_update_other_organization_404(self):
        """Updating another organisation's object answers 404 and changes nothing."""
        (_parent, _obj), (other_parent, other) = self.own_and_other()
        data = self.get_update_data(other, other_parent)
        for client in self._clients_that_may_write():
            response = self._send(client, self.update_method, self.detail_url(other, other_parent), data)
            assert_error(response, 404)
        assert not AuditEvent.objects.filter(object_id=str(other.pk), before__isnull=False).exists()


# --- delete -------------------------------------------------------------------------------------


class DeleteTests(APITestBase):
    def test_delete_anonymous_401(self):
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        assert_error(APIClient().delete(self.detail_url(obj, parent)), 401)
        assert self.model.objects.filter(pk=obj.pk).exists()

    def test_delete_too_weak_role_or_scope_403(self):
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        weaker = weaker_role(self.write_role)
        if weaker is not None:
            assert_error(self.client_as(weaker).delete(self.detail_url(obj, parent)), 403)
        response = self.client_as(scopes=scopes_without(self.write_scope)).delete(
            self.detail_url(obj, parent)
        )
        assert_error(response, 403)
        assert self.model.objects.filter(pk=obj.pk).exists()

    def test_delete(self):
        """A writer deletes an object (204); the deletion is audited."""
        parent = self.make_parent(self.org)
        obj = self.make_object(self.org, parent)
        response = self.writer().delete(self.detail_url(obj, parent))
        assert response.status_code == 204, _body(response)
        self.assert_deleted(obj)
        if self.audited:
            assert self._audit_exists(obj), "the deletion wrote no audit event"

    def test_delete_other_organization_404(self):
        """Deleting another organisation's object answers 404 and deletes nothing."""
        (_parent, _obj), (other_parent, other) = self.own_and_other()
        for client in self._clients_that_may_write():
            assert_error(client.delete(self.detail_url(other, other_parent)), 404)
        assert self.model.objects.filter(pk=other.pk).exists()


# --- combinations -------------------------------------------------------------------------------


class ReadOnlyAPIResourceTests(ListTests, RetrieveTests):
    """List and retrieve."""


class APIResourceTests(ListTests, RetrieveTests, CreateTests, UpdateTests, DeleteTests):
    """Every verb of a CRUD resource."""
