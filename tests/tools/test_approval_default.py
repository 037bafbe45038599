"""New tools require approval of each call unless they only read (``tools.models.approval_default``):
the services, the API (tests/agents/runtime/test_tool_approval.py) and the admin's form follow it."""

from __future__ import annotations

import re

import pytest

from tools.models import Tool, ToolKind, approval_default

pytestmark = pytest.mark.django_db


def test_the_rule():
    assert approval_default(kind=ToolKind.HTTP, read_only=False) is True
    assert approval_default(kind=ToolKind.HTTP, read_only=True) is False
    assert approval_default(kind=ToolKind.BUILTIN, read_only=False) is False


def test_the_admin_form_offers_it_on_for_a_new_tool(staff_client):
    page = staff_client.get("/admin/tools/tool/add/").content.decode()
    checkbox = re.search(r'<input[^>]*name="requires_approval"[^>]*>', page).group()
    assert "checked" in checkbox
    assert re.search(r'<input[^>]*name="read_only"[^>]*>', page)


def test_the_admin_creates_a_tool_with_what_the_form_says(staff_client, org):
    data = {"name": "Look-up", "url_template": "https://tools.example.com/q", "http_method": "GET",
            "timeout_seconds": 10, "max_response_bytes": 1000, "is_enabled": "on", "read_only": "on",
            "input_schema": "{}", "headers": "{}"}  # fmt: skip
    response = staff_client.post("/admin/tools/tool/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    tool = Tool.objects.get(organization=org, name="Look-up")
    assert tool.read_only is True and tool.requires_approval is False  # unticked on the form
