"""How the pages show the three kinds of assignment (tools, knowledge bases, guardrails).

Each entry adds what the pages need to the services' own ``AssignmentKind`` (model, target field,
label), and the pages write through the one family of services
(``assignment_create/update/delete/reorder``). The assignments page, its forms and the creation
wizard's steps read this table; nothing in the staff pages handles one kind by name.
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
class AssignmentPage:
    """How the pages show one kind of assignment (``kind``: the services' description of it)."""

    kind: services.AssignmentKind
    key: str  # the URL's and the wizard step's slug
    label: str
    related: str  # the agent's assignments of this kind (reverse accessor)
    choices_field: str  # the wizard step's field
    choices_label: str
    settings_fields: tuple[str, ...]  # of AssignmentSettingsForm
    offered: Callable[[], QuerySet]  # what may be assigned, before scoping (enabled items only)
    describe: Callable | None  # how an offered item reads in the wizard (None: its name)

    @property
    def target(self) -> str:
        """The assignment's field naming what is assigned (also the services' keyword)."""
        return self.kind.target


ASSIGNMENT_PAGES: dict[str, AssignmentPage] = {
    kind.key: kind
    for kind in (
        AssignmentPage(
            kind=services.TOOL,
            key="tools",
            label="Tools",
            related="tool_assignments",
            choices_field="tools",
            choices_label="Tools",
            settings_fields=("enabled", "settings", "requires_approval"),
            offered=lambda: Tool.objects.filter(is_enabled=True),
            describe=lambda t: f"{t.name} ({t.get_kind_display()})",
        ),
        AssignmentPage(
            kind=services.KNOWLEDGE,
            key="knowledge",
            label="Knowledge",
            related="knowledge_assignments",
            choices_field="knowledge_bases",
            choices_label="Knowledge bases",
            settings_fields=("enabled", "top_k", "min_score"),
            offered=lambda: KnowledgeBase.objects.all(),
            describe=None,
        ),
        AssignmentPage(
            kind=services.GUARDRAIL,
            key="guardrails",
            label="Guardrails",
            related="guardrail_assignments",
            choices_field="guardrails",
            choices_label="Guardrails",
            settings_fields=("enabled",),
            offered=lambda: Guardrail.objects.filter(enabled=True),
            describe=lambda g: f"{g.name} — {g.get_kind_display()}, {g.get_action_display().lower()}",
        ),
    )
}
