"""The three kinds of assignment (tools, knowledge bases, guardrails), described once for the pages.

The assignments page, its forms and the creation wizard's steps read this table; nothing in the
staff pages handles one kind by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet

from agents import services
from guardrails.models import Guardrail
from knowledge.models import KnowledgeBase
from tools.models import Tool


@dataclass(frozen=True)
class AssignmentKind:
    """How the pages show and write one kind of assignment."""

    key: str  # the URL's and the wizard step's slug
    label: str
    related: str  # the agent's assignments of this kind (reverse accessor)
    target: str  # the assignment's field naming what is assigned (also the services' keyword)
    choices_field: str  # the wizard step's field
    choices_label: str
    settings_fields: tuple[str, ...]  # of AssignmentSettingsForm
    offered: Callable[[], QuerySet]  # what may be assigned, before scoping (enabled items only)
    describe: Callable | None  # how an offered item reads in the wizard (None: its name)
    assign: Callable
    update: Callable
    unassign: Callable
    reorder: Callable


ASSIGNMENT_KINDS: dict[str, AssignmentKind] = {
    kind.key: kind
    for kind in (
        AssignmentKind(
            key="tools",
            label="Tools",
            related="tool_assignments",
            target="tool",
            choices_field="tools",
            choices_label="Tools",
            settings_fields=("enabled", "settings"),
            offered=lambda: Tool.objects.filter(is_enabled=True),
            describe=lambda t: f"{t.name} ({t.get_kind_display()})",
            assign=services.agent_tool_assign,
            update=services.agent_tool_update,
            unassign=services.agent_tool_unassign,
            reorder=services.agent_tool_reorder,
        ),
        AssignmentKind(
            key="knowledge",
            label="Knowledge",
            related="knowledge_assignments",
            target="knowledge_base",
            choices_field="knowledge_bases",
            choices_label="Knowledge bases",
            settings_fields=("enabled", "top_k", "min_score"),
            offered=lambda: KnowledgeBase.objects.all(),
            describe=None,
            assign=services.agent_knowledge_assign,
            update=services.agent_knowledge_update,
            unassign=services.agent_knowledge_unassign,
            reorder=services.agent_knowledge_reorder,
        ),
        AssignmentKind(
            key="guardrails",
            label="Guardrails",
            related="guardrail_assignments",
            target="guardrail",
            choices_field="guardrails",
            choices_label="Guardrails",
            settings_fields=("enabled",),
            offered=lambda: Guardrail.objects.filter(enabled=True),
            describe=lambda g: f"{g.name} — {g.get_kind_display()}, {g.get_action_display().lower()}",
            assign=services.agent_guardrail_assign,
            update=services.agent_guardrail_update,
            unassign=services.agent_guardrail_unassign,
            reorder=services.agent_guardrail_reorder,
        ),
    )
}
