"""``Tool.inside_firm``: an HTTP tool marked inside the firm receives the client identifiers behind a
run's placeholders (tests/agents/runtime/test_tool_identifiers.py runs it). Here: the field through the
API and the admin (editors change it, viewers cannot, another organisation's tool is 404), its audit
trail, and built-in tools always marked inside the firm."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from prisma_glow.audit.models import AuditEvent
from tests.factories import ToolFactory
from tests.support.api import assert_error, results
from tools.builtins import sync_builtin_tools
from tools.models import Tool

pytestmark = pytest.mark.django_db

migration = importlib.import_module("tools.migrations.0003_tool_inside_firm")


@pytest.fixture
def register(org):
    return ToolFactory(organization=org, name="Client register", url_template="https://crm.example.com/x")


# --- The model and the built-in tools --------------------------------------------------------------


def test_http_tools_are_outside_the_firm_unless_marked(register):
    assert register.inside_firm is False and register.receives_identifiers is False
    register.inside_firm = True
    assert register.receives_identifiers is True


def test_builtin_tools_are_inside_the_firm():
    builtins = Tool.objects.filter(organization__isnull=True)
    assert builtins.exists() and all(t.inside_firm and t.receives_identifiers for t in builtins)
    # A built-in row is inside the firm by construction, whatever its column says.
    assert Tool(kind="builtin", inside_firm=False).receives_identifiers is True


def test_sync_and_the_migration_mark_builtin_tools_inside_the_firm(register):
    Tool.objects.filter(organization__isnull=True).update(inside_firm=False)
    assert sync_builtin_tools() == Tool.objects.filter(organization__isnull=True).count()
    assert not Tool.objects.filter(organization__isnull=True, inside_firm=False).exists()
    Tool.objects.filter(organization__isnull=True).update(inside_firm=False)
    with connection.cursor() as cursor:
        cursor.execute(migration.Migration.operations[1].sql)
    assert not Tool.objects.filter(organization__isnull=True, inside_firm=False).exists()
    register.refresh_from_db()
    assert register.inside_firm is False  # HTTP tools stay outside


# --- The API --------------------------------------------------------------------------------------


def test_the_api_shows_the_field_and_builtins_are_inside(register, viewer_client):
    rows = {r["slug"]: r for r in results(viewer_client.get("/api/v1/tools/", {"page_size": 100}))}
    assert rows[register.slug]["inside_firm"] is False
    assert rows["vat-iban-validator"]["inside_firm"] is True


def test_an_editor_marks_a_tool_inside_the_firm_and_it_is_audited(register, editor_client):
    response = editor_client.patch(f"/api/v1/tools/{register.pk}/", {"inside_firm": True}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["inside_firm"] is True
    register.refresh_from_db()
    assert register.inside_firm is True
    event = AuditEvent.objects.filter(action="tool.update", object_id=str(register.pk)).latest("id")
    assert event.before["inside_firm"] is False and event.after["inside_firm"] is True


def test_a_tool_is_created_inside_the_firm_when_asked(org, editor_client):
    response = editor_client.post(
        "/api/v1/tools/",
        {"name": "Ledger", "url_template": "https://ledger.example.com/q", "inside_firm": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Tool.objects.get(pk=response.json()["id"]).inside_firm is True
    event = AuditEvent.objects.get(action="tool.create", object_id=str(response.json()["id"]))
    assert event.after["inside_firm"] is True


def test_a_viewer_cannot_change_it(register, viewer_client):
    response = viewer_client.patch(f"/api/v1/tools/{register.pk}/", {"inside_firm": True}, format="json")
    assert_error(response, 403)
    register.refresh_from_db()
    assert register.inside_firm is False


def test_another_organisations_tool_is_404(other_org, editor_client):
    foreign = ToolFactory(organization=other_org)
    response = editor_client.patch(f"/api/v1/tools/{foreign.pk}/", {"inside_firm": True}, format="json")
    assert_error(response, 404)
    foreign.refresh_from_db()
    assert foreign.inside_firm is False


def test_a_builtin_tool_cannot_be_moved_outside(editor_client):
    validator = Tool.objects.get(organization__isnull=True, slug="vat-iban-validator")
    response = editor_client.patch(f"/api/v1/tools/{validator.pk}/", {"inside_firm": False}, format="json")
    assert_error(response, 403)
    validator.refresh_from_db()
    assert validator.inside_firm is True


def test_a_value_that_is_not_a_boolean_is_a_400(register, editor_client):
    response = editor_client.patch(f"/api/v1/tools/{register.pk}/", {"inside_firm": "perhaps"}, format="json")
    assert_error(response, 400, fields=("inside_firm",))


# --- The admin ------------------------------------------------------------------------------------


def _form(tool, **overrides):
    data = {
        "name": tool.name,
        "slug": tool.slug,
        "description": "",
        "input_schema": '{"type": "object"}',
        "http_method": "POST",
        "url_template": tool.url_template,
        "headers": "{}",
        "secret_headers": "",
        "timeout_seconds": 10,
        "max_response_bytes": 262144,
        "is_enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_admin_form_explains_and_saves_the_field(register, staff_client):
    page = staff_client.get(f"/admin/tools/tool/{register.pk}/change/").content.decode()
    assert 'name="inside_firm"' in page and "receives the real values" in page
    response = staff_client.post(
        f"/admin/tools/tool/{register.pk}/change/", _form(register, inside_firm="on")
    )
    assert response.status_code == 302, response.content[:2000]
    register.refresh_from_db()
    assert register.inside_firm is True
    assert AuditEvent.objects.filter(action="tool.update", object_id=str(register.pk)).exists()
    # Unticked, it goes back outside.
    staff_client.post(f"/admin/tools/tool/{register.pk}/change/", _form(register))
    register.refresh_from_db()
    assert register.inside_firm is False


def test_a_viewer_sees_the_field_but_cannot_change_it(register, viewer_admin_client):
    page = viewer_admin_client.get(f"/admin/tools/tool/{register.pk}/change/")
    assert page.status_code == 200 and "inside the firm" in page.content.decode().lower()
    response = viewer_admin_client.post(
        f"/admin/tools/tool/{register.pk}/change/", _form(register, inside_firm="on")
    )
    assert response.status_code == 403
    register.refresh_from_db()
    assert register.inside_firm is False


def test_another_organisations_tool_is_404_in_the_admin(other_org, staff_client):
    foreign = ToolFactory(organization=other_org)
    assert staff_client.get(f"/admin/tools/tool/{foreign.pk}/change/").status_code == 404
