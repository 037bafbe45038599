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
