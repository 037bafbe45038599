"""``/api/v1/tools/``: CRUD of HTTP tools, built-in tools read-only, schema checks and ``test``."""

from __future__ import annotations

import pytest

from tests.factories import AgentFactory, AgentToolFactory, ToolFactory
from tests.support.api import APIResourceTests, assert_error, results
from tools.models import Tool

pytestmark = pytest.mark.django_db


@pytest.fixture
def vat_calculator(db):
    """The built-in VAT calculator (registered after migrate for every database)."""
    return Tool.objects.get(organization__isnull=True, slug="vat-calculator")


class TestToolAPI(APIResourceTests):
    model = Tool
    factory = ToolFactory
    url = "/api/v1/tools/"
    create_data = {
        "name": "ECB exchange rate",
        "url_template": "https://rates.example.com/ecb",
        "http_method": "GET",
        "input_schema": {"type": "object", "properties": {"currency": {"type": "string"}}},
        "secret_headers": {"Authorization": "Bearer s3cret"},
    }
    update_data = {"description": "Reference rates.", "timeout_seconds": 5}
    invalid_data = {"name": "", "http_method": "TRACE", "input_schema": "not an object"}
    write_only_fields = ("secret_headers",)

    def scoped_queryset(self, organization, parent=None):
        from django.db.models import Q

        return Tool.objects.filter(Q(organization=organization) | Q(organization__isnull=True))


def test_secret_headers_are_write_only(org, editor_client):
    response = editor_client.post("/api/v1/tools/", TestToolAPI.create_data, format="json")
    assert response.status_code == 201, response.json()
    assert "s3cret" not in response.content.decode() and response.json()["has_secret_headers"] is True
    tool = Tool.objects.get(pk=response.json()["id"])
    assert "s3cret" in tool.secret_headers
    listing = editor_client.get("/api/v1/tools/")
    assert "s3cret" not in listing.content.decode()


def test_builtin_tools_are_listed_and_read_only(vat_calculator, editor_client):
    rows = results(editor_client.get("/api/v1/tools/", {"is_builtin": "true", "page_size": 100}))
    assert "vat-calculator" in {r["slug"] for r in rows} and all(r["is_builtin"] for r in rows)
    url = f"/api/v1/tools/{vat_calculator.pk}/"
    assert_error(editor_client.patch(url, {"description": "mine"}, format="json"), 403)
    assert_error(editor_client.delete(url), 403)
    assert Tool.objects.filter(pk=vat_calculator.pk).exists()


def test_builtin_slug_cannot_be_shadowed(editor_client, vat_calculator):
    response = editor_client.post(
        "/api/v1/tools/",
        {"name": "Mine", "slug": "vat-calculator", "url_template": "https://x.example"},
        format="json",
    )
    assert_error(response, 409, fields=("slug",))


def test_input_schema_and_url_are_validated_on_write(org, editor_client):
    """A schema that is not a valid JSON Schema for an object, or a non-HTTP URL, gets 400."""
    response = editor_client.post(
        "/api/v1/tools/",
        {"name": "T", "url_template": "https://x.example", "input_schema": {"type": 12}},
        format="json",
    )
    assert_error(response, 400, fields=("input_schema",))
    response = editor_client.post(
        "/api/v1/tools/",
        {"name": "T", "url_template": "https://x.example", "input_schema": {"type": "array"}},
        format="json",
    )
    assert_error(response, 400, fields=("input_schema",))
    response = editor_client.post(
        "/api/v1/tools/", {"name": "T", "url_template": "ftp://x.example"}, format="json"
    )
    assert_error(response, 400, fields=("url_template",))
    tool = ToolFactory(organization=org)
    response = editor_client.patch(f"/api/v1/tools/{tool.pk}/", {"input_schema": {"type": 12}}, format="json")
    assert_error(response, 400, fields=("input_schema",))


def test_tool_in_use_cannot_be_deleted(org, editor_client):
    assignment = AgentToolFactory(agent=AgentFactory(organization=org))
    assert_error(editor_client.delete(f"/api/v1/tools/{assignment.tool_id}/"), 409)


def test_test_action_runs_the_builtin_vat_calculator(vat_calculator, editor_client):
    url = f"/api/v1/tools/{vat_calculator.pk}/test/"
    response = editor_client.post(url, {"arguments": {"net": "1000.00", "rate": "19"}}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True and body["output"]["vat"] == "190.00"


def test_test_action_400_on_arguments_against_schema(vat_calculator, editor_client, viewer_client):
    url = f"/api/v1/tools/{vat_calculator.pk}/test/"
    body = assert_error(
        editor_client.post(url, {"arguments": {"net": "1000.00"}}, format="json"), 400, fields=("arguments",)
    )
    assert any("rate" in m for m in body["errors"]["arguments"])
    assert_error(editor_client.post(url, {"arguments": [1]}, format="json"), 400, fields=("arguments",))
    assert_error(viewer_client.post(url, {"arguments": {"net": "1", "rate": "1"}}, format="json"), 403)


def test_test_action_calls_an_http_tool_on_loopback(org, editor_client, httpserver, settings):
    """An HTTP tool is called once and its JSON answer returned (pytest-httpserver on loopback)."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1/32", "localhost"]
    httpserver.expect_request("/rate", method="POST").respond_with_json({"rate": "1.0842"})
    tool = ToolFactory(
        organization=org, url_template=httpserver.url_for("/rate"), input_schema={"type": "object"}
    )
    response = editor_client.post(
        f"/api/v1/tools/{tool.pk}/test/", {"arguments": {"currency": "USD"}}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True, body
    assert body["output"] == {"rate": "1.0842"}


@pytest.mark.parametrize(
    ("field", "headers", "named"),
    [
        ("secret_headers", {"Authorization": "Bearer …"}, "Authorization"),  # the schema's old example
        ("headers", {"X-Trace": "a\r\nInjected: yes"}, "X-Trace"),
        ("headers", {"X-Trace": " padded"}, "X-Trace"),
        ("headers", {"Bad Name": "x"}, "Bad Name"),
        ("headers", {"": "x"}, "''"),
        ("secret_headers", {"Authorization: Bearer s3cret": "x"}, "of a secret header"),
        ("secret_headers", {"X-Count": 3}, "JSON object of strings"),
    ],
)
def test_headers_http_cannot_carry_are_refused(org, editor_client, field, headers, named):
    """Schemathesis stored ``"Bearer …"`` as a secret header; every call of the tool was then a 500
    (httpx cannot encode it). Such headers are a 400 naming the header, never echoing a secret."""
    body = {**TestToolAPI.create_data, field: headers}
    error = assert_error(editor_client.post("/api/v1/tools/", body, format="json"), 400, fields=[field])
    assert named in error["errors"][field][0]
    assert "Bearer" not in str(error) and "Injected" not in str(error) and "s3cret" not in str(error)
    assert not Tool.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("field", "headers", "named"),
    [
        ("secret_headers", {"Authorization": "Bearer …"}, "Authorization"),
        ("headers", {"X-Note": "café"}, "X-Note"),
    ],
)
def test_headers_http_cannot_carry_are_refused_on_update(org, editor_client, field, headers, named):
    """A PATCH goes through the same rule (``Tool.clean``): 400 naming the header, the tool unchanged."""
    tool = ToolFactory(organization=org, input_schema={"type": "object"})
    response = editor_client.patch(f"/api/v1/tools/{tool.pk}/", {field: headers}, format="json")
    error = assert_error(response, 400, fields=[field])
    assert named in error["errors"][field][0] and "Bearer" not in str(error)
    tool.refresh_from_db()
    assert tool.headers == {} and tool.secret_headers == ""


def test_headers_http_can_carry_are_accepted(org, editor_client):
    body = {
        **TestToolAPI.create_data,
        "headers": {"X-Api-Version": "2024-01-01", "Accept-Language": "de, en;q=0.5"},
    }
    response = editor_client.post("/api/v1/tools/", body, format="json")
    assert response.status_code == 201, response.json()


def test_a_stored_header_http_cannot_carry_is_a_tool_error_not_a_500(org, editor_client):
    """A tool saved before the API refused such headers: testing it reports the problem (no call made)."""
    tool = ToolFactory(organization=org, headers={"X-Note": "café"}, input_schema={"type": "object"})
    response = editor_client.post(f"/api/v1/tools/{tool.pk}/test/", {"arguments": {}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is False
    assert "X-Note" in body["error"] and "Edit the tool" in body["error"]


def test_a_stored_secret_header_http_cannot_carry_is_a_tool_error_never_quoting_it(org, editor_client):
    """A secret header stored before the rule (a token typed as the name): the tool test names the
    problem without repeating the name, which may hold the secret."""
    tool = ToolFactory(
        organization=org,
        secret_headers='{"Authorization: Bearer s3cret": "x"}',
        input_schema={"type": "object"},
    )
    response = editor_client.post(f"/api/v1/tools/{tool.pk}/test/", {"arguments": {}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is False and "of a secret header" in body["error"], body
    assert "s3cret" not in response.content.decode()
