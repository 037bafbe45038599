"""Writes on guardrails: create, update, delete — validated, in one transaction, audited.

The API, the admin and ``seed_demo`` call these, so each operation has one code path. ``actor`` is a
user, an ``APIKey`` or None (the system).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from guardrails.checks import CHECKS
from guardrails.models import Guardrail
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict

GUARDRAIL_EDITABLE_FIELDS = (
    "name",
    "description",
    "kind",
    "action",
    "applies_to_input",
    "applies_to_retrieval",
    "applies_to_output",
    "config",
    "enabled",
)


def default_stages(kind: str) -> dict[str, bool]:
    """The stages a new guardrail of ``kind`` runs at when none are given: output-only kinds on the
    output, prompt injection on the input and retrieved passages, the others on the input."""
    check = CHECKS.get(kind)
    if check is not None and "input" not in check.stages:
        return {"applies_to_input": False, "applies_to_retrieval": False, "applies_to_output": True}
    if kind == "prompt_injection":
        return {"applies_to_input": True, "applies_to_retrieval": True, "applies_to_output": False}
    return {"applies_to_input": True, "applies_to_retrieval": False, "applies_to_output": False}


@retry_on_conflict
@transaction.atomic
def guardrail_create(
    *,
    organization,
    actor,
    name: str,
    kind: str,
    action: str | None = None,
    config: dict[str, Any] | None = None,
    description: str = "",
    applies_to_input: bool | None = None,
    applies_to_retrieval: bool | None = None,
    applies_to_output: bool | None = None,
    enabled: bool = True,
) -> Guardrail:
    """Create a guardrail. ``action`` defaults to the kind's usual one (block; redact for PII; append for
    a disclaimer); the stages, when none is given, to ``default_stages(kind)``."""
    lock_for_write(organization=organization)
    stages = {
        "applies_to_input": applies_to_input,
        "applies_to_retrieval": applies_to_retrieval,
        "applies_to_output": applies_to_output,
    }
    if all(v is None for v in stages.values()):
        stages = default_stages(kind)
    else:
        stages = {k: bool(v) for k, v in stages.items()}
    if action is None:
        check = CHECKS.get(kind)
        action = check.default_action if check is not None else "block"
    guardrail = Guardrail(
        organization=organization,
        name=name,
        description=description,
        kind=kind,
        action=action,
        config=config if config is not None else {},
        enabled=enabled,
        **stages,
    )
    guardrail.full_clean()
    guardrail.save()
    audit_record(
        organization=organization,
        action="guardrail.create",
        actor=actor,
        obj=guardrail,
        after=snapshot(guardrail),
    )
    return guardrail


@retry_on_conflict
@transaction.atomic
def guardrail_update(*, guardrail: Guardrail, actor, **changes: Any) -> Guardrail:
    """Change any of ``GUARDRAIL_EDITABLE_FIELDS``; the whole guardrail is validated again."""
    unknown = sorted(set(changes) - set(GUARDRAIL_EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"guardrail_update() got unexpected field(s): {', '.join(unknown)}")
    lock_for_write(organization=guardrail.organization_id)
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    return audited_update(
        guardrail,
        organization=guardrail.organization,
        actor=actor,
        action="guardrail.update",
        fields=changes,
    )


@retry_on_conflict
@transaction.atomic
def guardrail_delete(*, guardrail: Guardrail, actor) -> None:
    """Delete a guardrail. One still assigned to an agent cannot be deleted (``ConflictError``): unassign
    or disable it first."""
    lock_for_write(organization=guardrail.organization_id)
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    agents = list(guardrail.assignments.values_list("agent__name", flat=True)[:5])
    if agents:
        raise ConflictError(
            f"The guardrail “{guardrail.name}” is assigned to {', '.join(agents)}; "
            "remove it from those agents (or disable it) first."
        )
    before = snapshot(guardrail)
    organization = guardrail.organization
    audit_record(
        organization=organization,
        action="guardrail.delete",
        actor=actor,
        obj=guardrail,
        before=before,
    )
    guardrail.delete()
