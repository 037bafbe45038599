"""HTTP tool URL templates: checked when saved (400 with a message), and a stored bad one gives a
clean error result in the tool test (API and admin page), never a 500."""

from __future__ import annotations

import pytest

from tests.factories import ToolFactory
from tests.support.admin import login
from tests.support.api import assert_error
from tools.http_executor import url_template_problem
from tools.models import Tool

pytestmark = pytest.mark.django_db

TOOLS = "/api/v1/tools/"

BAD_TEMPLATES = [
    ("https://rates.example.com/{currency", "unbalanced brace"),
    ("https://rates.example.com/currency}", "unbalanced brace"),
    ("https://rates.example.com/{cur{rency}}", "unbalanced brace"),
    ("https://rates.example.com/{}", "empty placeholder"),
    ("https://rates.example.com/{0}", "not an argument name"),
    ("https://rates.example.com/{a.b}", "not an argument name"),
    ("https://rates.example.com/{a[0]}", "not an argument name"),
    ("https://rates.example.com/{cur-rency}", "not an argument name"),
    ("https://rates.example.com/{currency!r}", "may not carry a format or conversion"),
    ("https://rates.example.com/{currency:>10}", "may not carry a format or conversion"),
    ("https://{host}/rates", "host and port of the URL cannot come from an argument"),
    ("https://{sub}.example.com/rates", "host and port of the URL cannot come from an argument"),
    ("https://rates.example.com{path}", "host and port of the URL cannot come from an argument"),
    ("https://rates.example.com:{port}/rates", "host and port of the URL cannot come from an argument"),
    ("https://{user}@rates.example.com/", "host and port of the URL cannot come from an argument"),
    ("http{s}://rates.example.com/", "must start with http:// or https://"),
    ("https://rates.example.com:99999/{a}", "not valid"),
    ("https:///{a}", "no host"),
    ("https:///path", "no host"),
]

GOOD_TEMPLATES = [
    "https://rates.example.com/ecb",
    "https://rates.example.com/ecb/{currency}",
    "https://rates.example.com:8443/ecb/{currency}?on={date}#{section}",
    "https://rates.example.com?currency={currency}",
    "https://rates.example.com/{{literal}}/{currency}",
    "http://[2606:4700:4700::1111]:8080/{path}",
]


@pytest.mark.parametrize(("template", "problem"), BAD_TEMPLATES)
def test_bad_templates_are_named(template, problem):
    assert problem in (url_template_problem(template) or "")


@pytest.mark.parametrize("template", GOOD_TEMPLATES)
def test_good_templates_pass(template):
    assert url_template_problem(template) is None


@pytest.mark.parametrize(("template", "problem"), BAD_TEMPLATES)
def test_the_api_answers_400_for_a_bad_template(editor_client, org, template, problem):
    data = {"name": "Rates", "url_template": template, "http_method": "GET"}
    body = assert_error(editor_client.post(TOOLS, data, format="json"), 400, fields=("url_template",))
    assert problem in body["errors"]["url_template"][0] or "must start with http" in body["message"]
    assert not Tool.objects.filter(organization=org).exists()


def test_the_api_refuses_a_bad_template_on_update(editor_client, org):
    tool = ToolFactory(organization=org, url_template="https://rates.example.com/{currency}")
    response = editor_client.patch(
        f"{TOOLS}{tool.pk}/", {"url_template": "https://rates.example.com/{currency"}, format="json"
    )
    assert "unbalanced brace" in assert_error(response, 400, fields=("url_template",))["message"]
    tool.refresh_from_db()
    assert tool.url_template == "https://rates.example.com/{currency}"


@pytest.mark.parametrize("template", GOOD_TEMPLATES)
def test_the_api_accepts_good_templates(editor_client, template):
    data = {"name": f"Rates {template}"[:100], "url_template": template, "http_method": "GET"}
    response = editor_client.post(TOOLS, data, format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("https://rates.example.com/{currency", "unbalanced brace"),
        ("https://{host}/rates", "host and port of the URL cannot come from an argument"),
        ("https://rates.example.com/{0}", "not an argument name"),
    ],
)
def test_a_stored_bad_template_is_a_clean_error_in_the_tool_test(
    editor, editor_client, org, template, problem
):
    """Templates stored before the check (or written around it) fail the test run with the reason."""
    tool = ToolFactory(
        organization=org,
        url_template=template,
        http_method="GET",
        input_schema={"type": "object", "properties": {"currency": {"type": "string"}}},
    )
    response = editor_client.post(
        f"{TOOLS}{tool.pk}/test/", {"arguments": {"currency": "EUR"}}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is False and problem in body["error"] and "Edit the tool" in body["error"]

    page = login(editor).post(f"/admin/tools/tool/{tool.pk}/test/", {"raw_json": '{"currency": "EUR"}'})
    assert page.status_code == 200
    assert problem in page.content.decode()


@pytest.mark.parametrize(
    "url_template",
    ["http://169.254.169.254/latest/meta-data/{x}", "http://127.0.0.1:8080/{x}", "http://[::ffff:10.0.0.1]/"],
    ids=["metadata", "loopback", "mapped-private"],
)
def test_a_fixed_internal_host_is_refused_when_the_tool_is_saved(editor_client, org, url_template):
    """As for a provider's base_url: the host cannot come from an argument, so the guard judges it at
    save time, not only when a run calls the tool."""
    body = {"name": "Metadata", "url_template": url_template, "input_schema": {"type": "object"}}
    response = editor_client.post("/api/v1/tools/", body, format="json")
    assert "url_template" in assert_error(response, 400)["errors"]


def test_an_allowed_internal_host_is_accepted(editor_client, org, settings):
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1:8080"]
    body = {"name": "Rates", "url_template": "http://127.0.0.1:8080/{x}", "input_schema": {"type": "object"}}
    assert editor_client.post("/api/v1/tools/", body, format="json").status_code == 201
