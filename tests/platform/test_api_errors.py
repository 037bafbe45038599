"""One JSON error shape everywhere, and no 500 for malformed input of any size or encoding."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import AgentFactory
from tests.support.api import assert_error

KEYS_URL = "/api/v1/api-keys/"


@pytest.fixture
def raw(admin_user):
    """A plain Django client signed in as an admin, so bodies go out byte for byte (a session: only a
    person creates API keys or adds members; keys get 403 session_required before the body is read)."""
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"   ",
        b"\xff\xfe\xfa",  # not UTF-8
        '{"name": "caf\u00e9"}'.encode("latin-1"),
        b'{"name": NaN, "scopes": ["read"]}',
        b'{"name": "x", "scopes": ["read"], "n": 1e999}',
        b'{"name": "x", "scopes": ["read"], "n": ' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b"[1, 2]",
        b'"a string"',
        b"null",
    ],
    ids=[
        "broken",
        "empty",
        "blank",
        "binary",
        "latin1",
        "nan",
        "inf",
        "huge-int",
        "deep",
        "list",
        "str",
        "null",
    ],
)
def test_malformed_json_bodies_400(raw, body):
    response = raw.post(KEYS_URL, body, content_type="application/json")
    assert_error(response, 400)


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "bad\x00name", "scopes": ["read"]},
        {"name": "ok", "scopes": ["read\x00"]},
        {"name": "ok", "scopes": ["read"], "extra\x00key": 1},
        {"name": "ok", "scopes": ["read"], "nested": {"deep": ["a", {"b": "c\x00"}]}},
    ],
)
def test_nul_characters_in_json_rejected_400(raw, payload):
    response = raw.post(KEYS_URL, json.dumps(payload), content_type="application/json")
    body = assert_error(response, 400)
    assert "NUL" in body["message"]


def test_nul_in_form_and_multipart_400(raw):
    assert_error(
        raw.post(KEYS_URL, "name=a%00b&scopes=read", content_type="application/x-www-form-urlencoded"), 400
    )
    assert_error(raw.post(KEYS_URL, {"name": "a\x00b", "scopes": "read"}), 400)  # multipart


def test_nul_in_query_path_and_headers_400(raw, org, owner):
    assert_error(raw.get(KEYS_URL + "?search=a%00b"), 400)
    assert_error(raw.get("/api/v1/api-keys/%00/"), 400)
    assert_error(client_for(owner).get("/api/v1/organization/", HTTP_X_ORGANIZATION="demo\x00firm"), 400)
    assert_error(Client(HTTP_AUTHORIZATION="Api-Key pg_1234\x005678.secret").get(KEYS_URL), 400)


def test_wrong_content_type_415(raw):
    body = assert_error(raw.post(KEYS_URL, "name=x", content_type="text/plain"), 415)
    assert body["code"] == "unsupported_media_type"


def test_huge_body_413_without_reading_it(raw, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = json.dumps({"name": "x" * 2000, "scopes": ["read"]})
    assert_error(raw.post(KEYS_URL, big, content_type="application/json"), 413)
    assert_error(raw.post(KEYS_URL, "ok", content_type="application/json", CONTENT_LENGTH="abc"), 400)


def test_overlong_values_400_not_500(raw):
    response = raw.post(
        KEYS_URL,
        json.dumps({"name": "x" * 100_000, "scopes": ["read"] * 50}),
        content_type="application/json",
    )
    assert_error(response, 400, fields=["name", "scopes"])


def test_wrong_types_400(raw):
    response = raw.post(
        KEYS_URL,
        json.dumps({"name": {"a": 1}, "scopes": "read", "expires_at": 5}),
        content_type="application/json",
    )
    assert_error(response, 400, fields=["name", "scopes", "expires_at"])


def test_lone_surrogates_400(raw):
    body = '{"name": "bad \\ud800 name", "scopes": ["read"]}'
    assert_error(raw.post(KEYS_URL, body, content_type="application/json"), 400, fields=["name"])


def test_timezone_offsets_postgresql_refuses_are_normalised(raw):
    """RFC 3339 allows offsets up to ±23:59; PostgreSQL only ±15:59: filters normalise to UTC."""
    for value in ("0487-12-05T01:21:35-22:55", "0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:00"):
        response = raw.get("/api/v1/audit-events/", {"at_after": value, "at_before": value})
        assert response.status_code == 200, response.json()


def test_unknown_reference_404_duplicate_409(raw, org):
    """A body naming something the caller cannot see is a 404; a duplicate is a 409."""
    agent = AgentFactory(organization=org)
    assert_error(
        raw.post(f"/api/v1/agents/{agent.pk}/tools/", {"tool": 99999999}, content_type="application/json"),
        404,
        fields=["tool"],
    )


def test_huge_and_odd_ids_404(raw):
    for path in ["99999999999999999999999/", "-1/", "abc/", "1e5/", "%C3%A9/"]:
        assert_error(raw.get(KEYS_URL + path), 404)
        assert_error(raw.post(KEYS_URL + path + "revoke/"), 404)


def test_unknown_api_urls_and_methods_are_json(raw):
    assert_error(raw.get("/api/v1/no-such-thing/"), 404)
    assert_error(raw.get("/api/v2/"), 404)
    assert_error(raw.get("/api/"), 404)
    assert_error(raw.put(KEYS_URL, "{}", content_type="application/json"), 405)
    assert_error(raw.delete("/api/v1/organization/"), 405)


def test_unhandled_exception_is_a_json_500(raw, monkeypatch):
    from prisma_glow.tenancy.api.views import APIKeyViewSet

    def boom(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(APIKeyViewSet, "list", boom)
    body = assert_error(raw.get(KEYS_URL), 500)
    assert "boom" not in body["message"]


def test_invalid_filter_and_page_values_400_or_404(raw):
    assert_error(raw.get("/api/v1/members/", {"role": "emperor"}), 400)
    assert_error(raw.get("/api/v1/members/", {"page": "999"}), 404)
    for page_size in ("0", "101", "abc", "", "1.5", "-1"):
        assert_error(raw.get("/api/v1/members/", {"page_size": page_size}), 400, fields=["page_size"])
    for page in ("0", "abc", ""):
        assert_error(raw.get("/api/v1/members/", {"page": page}), 400, fields=["page"])
    assert_error(raw.get("/api/v1/audit-events/", {"page_size": "x"}), 400, fields=["page_size"])
    assert raw.get("/api/v1/members/", {"ordering": "nonexistent"}).status_code == 200


def test_page_size_is_capped(raw, org):
    from tests.factories import MembershipFactory

    MembershipFactory.create_batch(102, organization=org)  # and the signed-in admin's
    body = raw.get("/api/v1/members/", {"page_size": "100"}).json()
    assert body["count"] == 103 and len(body["results"]) == 100
    assert len(raw.get("/api/v1/members/").json()["results"]) == 25


# --- the schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_schema_declares_the_error_component_on_every_operation(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status", "code", "message", "errors"}
    for path, method, operation in _operations(schema):
        declared = set(operation["responses"])
        expected = {"400", "401", "403", "404", "429"} | ({"409"} if method != "get" else set())
        assert expected <= declared, (method, path, declared)
        for code in expected:
            content = operation["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, code)
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_schema_documents_platform_operations(schema):
    ops = {(m, p) for p, m, _ in _operations(schema)}
    for expected in [
        ("get", "/api/v1/api-keys/"),
        ("post", "/api/v1/api-keys/"),
        ("post", "/api/v1/api-keys/{id}/rotate/"),
        ("post", "/api/v1/api-keys/{id}/revoke/"),
        ("get", "/api/v1/members/"),
        ("post", "/api/v1/members/"),
        ("patch", "/api/v1/members/{id}/"),
        ("delete", "/api/v1/members/{id}/"),
        ("get", "/api/v1/organization/"),
        ("patch", "/api/v1/organization/"),
        ("get", "/api/v1/audit-events/"),
        ("get", "/api/v1/audit-events/{id}/"),
    ]:
        assert expected in ops
    for path, method, operation in _operations(schema):
        if path.startswith(("/api/v1/api-keys", "/api/v1/members", "/api/v1/organization", "/api/v1/audit")):
            assert operation.get("summary") or operation.get("description"), (method, path)
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]


def test_swagger_ui_served_from_our_own_static_files(db):
    """The Swagger UI works under the strict CSP: every script is served by us, none from a CDN."""
    import re

    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts and all(src.startswith("/") for src in scripts), scripts
    assert "<script>" not in html and "<style>" not in html  # nothing inline (CSP allows only 'self')
    assert "prisma_glow_api/swagger.css" in html
    init = Client().get("/api/v1/docs/?script=")
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")


def test_unknown_fields_are_refused_not_dropped(raw):
    """A field the endpoint does not know is a 400 naming it; nothing is created."""
    from prisma_glow.tenancy.models import APIKey

    before = APIKey.objects.count()
    body = json.dumps({"name": "Portal", "scopes": ["read"], "scope": "admin"})
    assert_error(raw.post(KEYS_URL, body, content_type="application/json"), 400, fields=["scope"])
    assert APIKey.objects.count() == before


def test_boolean_filters_are_strict(raw):
    from prisma_glow.api.strict import StrictDjangoFilterBackend

    class View:
        filterset_class = None
        filterset_fields = None

    import django_filters
    from django.test import RequestFactory
    from rest_framework.request import Request

    from prisma_glow.tenancy.models import APIKey

    class KeyFilterSet(django_filters.FilterSet):
        revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

        class Meta:
            model = APIKey
            fields = ["revoked"]

    View.filterset_class = KeyFilterSet
    backend = StrictDjangoFilterBackend()
    for value, ok in [("true", True), ("False", True), ("16091", False), ("", False), ("yes", False)]:
        request = Request(RequestFactory().get("/", {"revoked": value}))
        if ok:
            backend.filter_queryset(request, APIKey.objects.all(), View())
        else:
            with pytest.raises(Exception) as excinfo:
                backend.filter_queryset(request, APIKey.objects.all(), View())
            assert excinfo.value.status_code == 400


def test_schema_request_bodies_are_closed_and_json(schema):
    assert schema["components"]["schemas"]["APIKeyCreateRequest"]["additionalProperties"] is False
    name = schema["components"]["schemas"]["APIKeyCreateRequest"]["properties"]["name"]
    assert "\\u0000" in name["pattern"]
    body = schema["paths"]["/api/v1/api-keys/"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]


def test_id_filters_take_any_id_in_range(raw):
    assert raw.get("/api/v1/audit-events/", {"actor_user": str(2**63 - 1)}).json()["results"] == []
    assert_error(raw.get("/api/v1/audit-events/", {"actor_user": str(2**63)}), 400, fields=["actor_user"])
    assert_error(raw.get("/api/v1/audit-events/", {"actor_user": "0"}), 400, fields=["actor_user"])


@pytest.mark.parametrize(
    "kwargs, good, bad",
    [
        (
            {"max_digits": 12, "decimal_places": 6},
            ["0", "-1.5", ".5", "123456.123456", "7."],
            ["", "-", ".", "1e3"],
        ),
        ({"max_digits": 12, "decimal_places": 6, "min_value": 0}, ["0", "2.5"], ["-1", "-0.5"]),
        (
            {"max_digits": 3, "decimal_places": 2, "min_value": 0, "max_value": 2},
            ["0", "1.99", "2", "2.00", ".5"],
            ["2.01", "3", "5.", "-1", ""],
        ),
    ],
)
def test_decimal_patterns_match_what_the_field_accepts(kwargs, good, bad):
    import re
    from decimal import Decimal

    from rest_framework import serializers

    from prisma_glow.api.schema import decimal_pattern

    field = serializers.DecimalField(
        **{k: Decimal(v) if k.endswith("value") else v for k, v in kwargs.items()}
    )
    pattern = re.compile(decimal_pattern(field))
    for value in good:
        assert pattern.match(value), (value, pattern.pattern)
        field.run_validation(value)
    for value in bad:
        assert not pattern.match(value), (value, pattern.pattern)


def test_text_fields_take_text_only(owner):
    """A number sent for a text field is a 400, not silently turned into a string."""
    response = client_for(owner).put("/api/v1/organization/", {"name": 0.0, "slug": 0}, format="json")
    assert_error(response, 400, fields=["name", "slug"])


def test_empty_values_for_typed_filters_400(raw):
    """``?role=`` would silently list every member: an empty choice, id or date is refused."""
    for params in ({"role": ""},):
        assert_error(raw.get("/api/v1/members/", params), 400, fields=list(params))
    for params in ({"actor_user": ""}, {"at_after": ""}, {"at_before": ""}):
        assert_error(raw.get("/api/v1/audit-events/", params), 400, fields=list(params))
    assert raw.get("/api/v1/audit-events/", {"action": "", "actor": ""}).status_code == 200


def test_schema_describes_the_streamed_execution_as_an_event_stream(schema):
    created = schema["paths"]["/api/v1/agents/{id}/execute/"]["post"]["responses"]["201"]["content"]
    assert created["application/json"]["schema"] == {"$ref": "#/components/schemas/ExecutionDetail"}
    assert created["text/event-stream"]["schema"] == {"type": "string"}


def test_errors_are_declared_as_json_only(schema):
    """Errors are the JSON error shape even where the success answer is an event stream."""
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")) and "content" in response:
                assert list(response["content"]) == ["application/json"], (method, path, code)


def test_domain_exceptions_map_to_the_error_body():
    """Services raise ``prisma_glow.exceptions``; the API's handler alone turns them into HTTP."""
    from prisma_glow.api.errors import exception_handler
    from prisma_glow.exceptions import BUSY_MESSAGE, BusyError, ConflictError

    response = exception_handler(ConflictError({"user": "Already a member."}, code="conflict"), {})
    assert response.status_code == 409
    assert response.data == {
        "status": 409,
        "code": "conflict",
        "message": "Already a member.",
        "errors": {"user": ["Already a member."]},
    }
    response = exception_handler(BusyError(BUSY_MESSAGE, code="busy"), {})
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response.data == {"status": 503, "code": "busy", "message": BUSY_MESSAGE, "errors": {}}


def test_domain_exceptions_know_nothing_of_http():
    import ast

    import prisma_glow.exceptions as module

    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"__future__", "django.core.exceptions"}
