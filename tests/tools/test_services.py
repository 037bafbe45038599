"""Tool services: built-in tools are read-only, tools in use are protected."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from agents import services
from prisma_glow.exceptions import ConflictError as Conflict
from tests.factories import (
    AgentFactory,
    ToolFactory,
)
from tools.services import tool_create, tool_delete, tool_update

pytestmark = pytest.mark.django_db


def test_tools_builtin_read_only_and_in_use_protected(org, editor):
    """Built-in tools cannot be edited; a tool in use cannot be deleted."""
    tool = tool_create(organization=org, actor=editor, name="Rates", url_template="https://x.example/r")
    assert tool.slug == "rates"
    tool = tool_update(tool=tool, actor=editor, description="Exchange rates", secret_headers={"X-Key": "s"})
    agent = AgentFactory(organization=org)
    services.assignment_create(kind=services.TOOL, agent=agent, tool=tool, actor=editor)
    with pytest.raises(Conflict):
        tool_delete(tool=tool, actor=editor)
    builtin = ToolFactory(
        organization=None, kind="builtin", builtin_key="x", url_template="", slug="zz-builtin"
    )
    with pytest.raises(PermissionDenied):
        tool_update(tool=builtin, actor=editor, description="no")
    with pytest.raises(ValidationError) as exc:
        tool_create(
            organization=org, actor=editor, name="Bad", url_template="https://x", input_schema={"type": 5}
        )
    assert "input_schema" in exc.value.message_dict


@pytest.mark.parametrize(
    ("field", "headers", "named"),
    [
        ("headers", {"X-Note": "café"}, "X-Note"),
        ("headers", {"X-Trace": "a\r\nInjected: yes"}, "X-Trace"),
        ("secret_headers", {"Authorization": "Bearer …"}, "Authorization"),
        ("secret_headers", '{"X-Api-Key": "s3cret\\n"}', "X-Api-Key"),  # JSON text, as the form gives
        ("secret_headers", {"Authorization: Bearer s3cret": "x"}, "of a secret header"),
    ],
)
def test_tools_refuse_headers_http_cannot_carry(org, editor, field, headers, named):
    """Creating or editing a tool refuses headers httpx cannot send (every call would fail), on the field,
    whatever the door; the message names the header and never quotes a secret."""
    with pytest.raises(ValidationError) as exc:
        tool_create(
            organization=org,
            actor=editor,
            name="Rates",
            url_template="https://x.example/r",
            **{field: headers},
        )
    assert list(exc.value.message_dict) == [field] and named in exc.value.message_dict[field][0]
    assert not any(secret in str(exc.value) for secret in ("Bearer", "s3cret", "Injected"))
    tool = tool_create(organization=org, actor=editor, name="Rates", url_template="https://x.example/r")
    with pytest.raises(ValidationError) as exc:
        tool_update(tool=tool, actor=editor, description="Changed", **{field: headers})
    assert list(exc.value.message_dict) == [field] and named in exc.value.message_dict[field][0]
    tool.refresh_from_db()
    assert tool.headers == {} and tool.secret_headers == "" and tool.description == ""


def test_tools_accept_headers_http_can_carry(org, editor):
    tool = tool_create(
        organization=org,
        actor=editor,
        name="Rates",
        url_template="https://x.example/r",
        headers={"Accept-Language": "de, en;q=0.5"},
        secret_headers={"Authorization": "Bearer tok-123"},
    )
    assert tool.headers == {"Accept-Language": "de, en;q=0.5"} and "tok-123" in tool.secret_headers
