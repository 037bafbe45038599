"""Tools: slugs, kinds, URLs, JSON Schemas and headers."""

from __future__ import annotations

import pytest

from tests.factories import ToolFactory
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid
from tools.models import Tool

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def _http(org, **values):
    return Tool(
        organization=org,
        **{
            "name": "Lookup",
            "slug": "lookup",
            "kind": "http",
            "url_template": "https://api.example.com/x",
            **values,
        },
    )


def _builtin(**values):
    return Tool(
        organization=None,
        **{"name": "Calc", "slug": "calc-x", "kind": "builtin", "builtin_key": "calc_x", **values},
    )


def test_slug_is_unique_per_organization(org, other_org):
    """One organisation cannot have two tools with one slug; another organisation can."""
    ToolFactory(organization=org, slug="lookup")
    assert_db_rejects(lambda: _http(org, name="Other").save())
    assert_conflict(
        _http(org, name="Other"), "A tool with this slug already exists in this organisation.", field="slug"
    )
    _http(other_org).full_clean()


def test_builtin_slug_is_unique():
    """Built-in tools (no organisation) have unique slugs too, although NULLs never compare equal."""
    _builtin().save()
    assert_db_rejects(lambda: _builtin(name="Calc 2").save())
    assert_conflict(_builtin(name="Calc 2"), "A built-in tool with this slug already exists.", field="slug")


def test_kind_must_be_known(org):
    """Tools are built-in or HTTP."""
    assert_db_rejects(lambda: _http(org, kind="python").save())
    assert_invalid(_http(org, kind="python"), "Value 'python' is not a valid choice.", field="kind")


def test_http_method_must_be_known(org):
    """Only GET, POST, PUT, PATCH and DELETE are sent."""
    assert_db_rejects(lambda: _http(org, http_method="TRACE").save())


def test_http_tool_needs_a_url(org):
    """An HTTP tool without a URL is refused."""
    assert_db_rejects(lambda: _http(org, url_template="").save())
    assert_invalid(_http(org, url_template=""), "An HTTP tool needs a URL.", field="url_template")


@pytest.mark.parametrize("url", ["ftp://files.example.com/x", "api.example.com/x", "file:///etc/passwd"])
def test_http_tool_url_must_be_http_or_https(org, url):
    """Only http:// and https:// URLs are accepted."""
    assert_invalid(
        _http(org, url_template=url), "The URL must start with http:// or https://.", field="url_template"
    )


def test_builtin_tool_needs_its_key():
    """A built-in tool names its implementation."""
    assert_db_rejects(lambda: _builtin(builtin_key="").save())
    assert_invalid(_builtin(builtin_key=""), "A built-in tool needs its implementation key.")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "The input schema must be a JSON object."),
        ({"type": "nonsense"}, "Not a valid JSON Schema"),
        ({"type": "string"}, 'Tool arguments are a JSON object: use "type": "object".'),
    ],
)
def test_input_schema_is_a_json_schema_for_an_object(org, schema, message):
    """The arguments schema must be valid JSON Schema describing an object."""
    assert_invalid(_http(org, input_schema=schema), message, field="input_schema")


def test_valid_schema_and_empty_schema_pass(org):
    """A proper object schema and an empty schema are both accepted."""
    _http(org, input_schema=SCHEMA).full_clean()
    _http(org, slug="lookup-2", name="Lookup 2", input_schema={}).full_clean()


@pytest.mark.parametrize("headers", [["X-Key"], {"X-Retries": 3}, {"X": None}])
def test_headers_are_an_object_of_strings(org, headers):
    """Header names and values are strings."""
    assert_invalid(_http(org, headers=headers), "Headers must be a JSON object of strings.", field="headers")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("headers", {"X-Note": "café"}, "The value of the header 'X-Note' cannot be sent over HTTP"),
        ("headers", {"X Note": "x"}, "The header name 'X Note' is not a valid HTTP header name"),
        ("secret_headers", '{"Authorization": "Bearer …"}', "The value of the header 'Authorization'"),
        ("secret_headers", '{"X Key": "x"}', "The header name of a secret header is not a valid"),
        ("secret_headers", '{"X-Key": 3}', "Secret headers must be a JSON object of strings."),
        ("secret_headers", '["X-Key"]', "Secret headers must be a JSON object of strings."),
        ("secret_headers", "not json", "Secret headers must be a JSON object of strings."),
    ],
)
def test_headers_are_ones_http_can_carry(org, field, value, message):
    """Plain and secret (decrypted JSON) headers are ones HTTP can carry; secret ones are never quoted."""
    assert_invalid(_http(org, **{field: value}), message, field=field)


def test_headers_http_can_carry_are_valid(org):
    _http(org, headers={"Accept-Language": "de, en;q=0.5"}, secret_headers='{"X-Key": "k 1"}').full_clean()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_seconds", 0, "greater than or equal to 1"),
        ("timeout_seconds", 121, "less than or equal to 120"),
        ("max_response_bytes", 0, "greater than or equal to 1"),
        ("http_method", "TRACE", "Value 'TRACE' is not a valid choice."),
    ],
)
def test_http_settings_bounds(org, field, value, message):
    """Timeout, response size and method are validated."""
    assert_invalid(_http(org, **{field: value}), message, field=field)


def test_secret_headers_are_encrypted_at_rest(org):
    """Secret header values never sit in the database in clear."""
    from django.db import connection

    tool = ToolFactory(organization=org, secret_headers='{"Authorization": "Bearer tok-987"}')
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret_headers FROM {Tool._meta.db_table} WHERE id = %s", [tool.pk])
        assert "tok-987" not in cursor.fetchone()[0]
    assert "tok-987" in Tool.objects.get(pk=tool.pk).secret_headers
