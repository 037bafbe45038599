"""The staff pages of tools: the registry, the tool form and the test runner."""

from __future__ import annotations

import json

import pytest

from prisma_glow.audit.models import AuditEvent
from tests.factories import AgentToolFactory, ToolFactory
from tools.models import Tool

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def tool_data(**overrides):
    data = {
        "name": "Client lookup",
        "slug": "",
        "description": "Looks a client up in the CRM.",
        "input_schema": json.dumps(SCHEMA),
        "http_method": "POST",
        "url_template": "https://crm.example.com/lookup",
        "headers": "{}",
        "secret_headers": '{"Authorization": "Bearer s3cret"}',
        "timeout_seconds": 10,
        "max_response_bytes": 262144,
        "is_enabled": "on",
    }
    data.update(overrides)
    return data


def vat_tool():
    return Tool.objects.get(organization__isnull=True, builtin_key="vat-calculator")


# --- Tools ------------------------------------------------------------------------------------


def test_tool_registry_lists_builtin_and_own_tools(staff_client, org, other_org):
    ToolFactory(organization=org, name="Own tool")
    ToolFactory(organization=other_org, name="Foreign tool")
    html = staff_client.get("/admin/tools/tool/").content.decode()
    assert "Own tool" in html and "VAT calculator" in html and "Foreign tool" not in html
    assert "Prisma Glow" in html and "/test/" in html


def test_tool_created_through_the_service_with_secret_headers_write_only(staff_client, org):
    response = staff_client.post("/admin/tools/tool/add/", tool_data())
    assert response.status_code == 302, response.content[:3000]
    tool = Tool.objects.get(organization=org, name="Client lookup")
    assert tool.slug == "client-lookup" and tool.input_schema == SCHEMA
    assert json.loads(tool.secret_headers) == {"Authorization": "Bearer s3cret"}
    assert AuditEvent.objects.filter(action="tool.create", object_id=str(tool.pk)).exists()
    page = staff_client.get(f"/admin/tools/tool/{tool.pk}/change/").content.decode()
    assert "s3cret" not in page and "stored (hidden)" in page
    # Saving without typing secret headers keeps them.
    staff_client.post(
        f"/admin/tools/tool/{tool.pk}/change/", tool_data(secret_headers="", description="Changed")
    )
    tool.refresh_from_db()
    assert tool.description == "Changed" and "s3cret" in tool.secret_headers


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_schema", "{not json", "Not valid JSON"),
        ("input_schema", '{"type": "array"}', "use &quot;type&quot;: &quot;object&quot;"),
        (
            "input_schema",
            '{"type": "object", "properties": {"q": {"type": "strung"}}}',
            "Not a valid JSON Schema",
        ),
        ("input_schema", "[1, 2]", "Give a JSON object"),
        ("headers", '{"X-Count": 3}', "Headers must be a JSON object of strings"),
        ("url_template", "ftp://example.com", "must start with http"),
        ("name", "", "This field is required"),
        ("timeout_seconds", "500", "less than or equal to 120"),
    ],
)
def test_tool_form_validation(staff_client, org, field, value, message):
    response = staff_client.post("/admin/tools/tool/add/", tool_data(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Tool.objects.filter(organization=org).exists()


@pytest.mark.parametrize(
    ("field", "typed", "named"),
    [
        ("headers", '{"X-Note": "café"}', "X-Note"),
        ("headers", '{"X-Trace": "a\\r\\nInjected: yes"}', "X-Trace"),
        ("headers", '{"Bad Name": "x"}', "Bad Name"),
        ("secret_headers", '{"Authorization": "Bearer …"}', "Authorization"),
        ("secret_headers", '{"X-Api-Key": " s3cret"}', "X-Api-Key"),
        ("secret_headers", '{"Authorization: Bearer s3cret": "x"}', "of a secret header"),
        ("secret_headers", '{"X-Count": 3}', "Secret headers must be a JSON object of strings"),
    ],
)
def test_tool_form_refuses_headers_http_cannot_carry(staff_client, org, field, typed, named):
    """Plain and secret headers HTTP cannot carry are an error on their field (Tool.clean's rule, as
    the API's), never a saved tool whose every call fails; the error never quotes a secret."""
    response = staff_client.post("/admin/tools/tool/add/", tool_data(**{field: typed}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field], errors
    assert any(named in message for message in errors[field]), errors
    assert not any(secret in str(errors) for secret in ("Bearer", "s3cret", "Injected"))
    assert not Tool.objects.filter(organization=org).exists()


def test_tool_form_edit_refuses_secret_headers_http_cannot_carry(staff_client, org):
    """Typed on an existing tool, such secret headers are refused on the field; the stored ones stay."""
    tool = ToolFactory(
        organization=org, name="Client lookup", secret_headers='{"Authorization": "Bearer ok"}'
    )
    response = staff_client.post(
        f"/admin/tools/tool/{tool.pk}/change/",
        tool_data(secret_headers='{"Authorization": "Bearer …"}', description="Changed"),
    )
    assert response.status_code == 200
    assert "Authorization" in response.context["adminform"].form.errors["secret_headers"][0]
    tool.refresh_from_db()
    assert json.loads(tool.secret_headers) == {"Authorization": "Bearer ok"} and tool.description != "Changed"


def test_tool_form_names_stored_secret_headers_http_cannot_carry(staff_client, org):
    """A tool stored before the rule: saving it without typing secret headers names the stored one that
    cannot be sent (beside the field, through the service); removing them saves."""
    tool = ToolFactory(organization=org, name="Client lookup", secret_headers='{"Authorization": "Bearer …"}')
    url = f"/admin/tools/tool/{tool.pk}/change/"
    response = staff_client.post(url, tool_data(secret_headers="", description="Changed"))
    assert response.status_code == 200
    assert "Authorization" in response.context["adminform"].form.errors["secret_headers"][0]
    response = staff_client.post(
        url, tool_data(secret_headers="", clear_secret_headers="on", description="Changed")
    )
    assert response.status_code == 302
    tool.refresh_from_db()
    assert tool.secret_headers == "" and tool.description == "Changed"


def test_tool_service_errors_show_beside_fields(staff_client, org):
    ToolFactory(organization=org, name="Client lookup", slug="existing")
    response = staff_client.post("/admin/tools/tool/add/", tool_data(slug="vat-calculator"))
    html = response.content.decode()
    assert "already exists in this organisation" in html and "slug of a built-in tool" in html


def test_builtin_tools_are_read_only(staff_client):
    tool = vat_tool()
    page = staff_client.get(f"/admin/tools/tool/{tool.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "vat-calculator" in page
    assert staff_client.post(f"/admin/tools/tool/{tool.pk}/change/", tool_data()).status_code == 403
    assert staff_client.post(f"/admin/tools/tool/{tool.pk}/delete/", {"post": "yes"}).status_code == 403


def test_deleting_an_assigned_tool_is_refused(staff_client, org):
    assignment = AgentToolFactory(agent__organization=org)
    response = staff_client.post(
        f"/admin/tools/tool/{assignment.tool_id}/delete/", {"post": "yes"}, follow=True
    )
    assert "Cannot delete" in response.content.decode()
    assert Tool.objects.filter(pk=assignment.tool_id).exists()


def test_tool_test_runner_form_is_generated_from_the_schema(staff_client):
    html = staff_client.get(f"/admin/tools/tool/{vat_tool().pk}/test/").content.decode()
    for name in ("arg_net", "arg_gross", "arg_rate", "arg_rounding", "raw_json"):
        assert f'name="{name}"' in html
    assert '<label for="id_arg_rate"' in html and "half_even" in html


def test_tool_test_runner_runs_the_builtin_vat_calculator(staff_client):
    """The scenario's €1,000 at 19%: the runner calls the same ``run_tool`` as the runtime."""
    url = f"/admin/tools/tool/{vat_tool().pk}/test/"
    response = staff_client.post(url, {"arg_net": "1000.00", "arg_rate": "19", "arg_rounding": '"half_up"'})
    html = response.content.decode()
    assert response.status_code == 200 and "190.00" in html and "1190.00" in html
    fragment = staff_client.post(
        url, {"raw_json": '{"net": "1000.00", "rate": "19"}'}, headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.lstrip().startswith('<section id="tool-result"') and "190.00" in fragment


def test_tool_test_runner_shows_argument_errors(staff_client):
    url = f"/admin/tools/tool/{vat_tool().pk}/test/"
    response = staff_client.post(url, {"arg_net": "1000"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = staff_client.post(url, {"arg_net": "1000", "arg_rate": "19", "arg_decimals": "9"})
    assert response.status_code == 400 and "less than or equal to 4" in response.content.decode()
    response = staff_client.post(url, {"raw_json": "[1]"})
    assert response.status_code == 400 and "Give a JSON object" in response.content.decode()
    response = staff_client.post(url, {"arg_net": "abc", "arg_rate": "19"})
    assert response.status_code == 400 and "does not match" in response.content.decode()


def test_tool_runner_reports_a_failing_tool(staff_client):
    response = staff_client.post(
        f"/admin/tools/tool/{vat_tool().pk}/test/", {"arg_net": "100", "arg_rate": "150"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and "between 0 and 100 percent" in html and "pg-badge-failed" in html
