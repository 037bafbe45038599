"""Persona services: versioned, audited writes shared by the API, the admin and the commands.

A persona version that an execution has used, or that a release holds, is immutable, so the trace of
every execution keeps pointing at the exact prompt it ran with: editing it creates the next version
instead. Whether a version is used is one rule, ``personas.selectors.used_condition``. At most one
version per agent is active; activation switches it in one transaction.
"""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from personas import selectors
from personas.models import Persona
from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict

# The fields a caller may set; everything else (agent, version, is_active, created_by) is managed here.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "system_prompt",
    "tone",
    "audience",
    "language",
    "temperature",
    "max_tokens",
    "model_override",
)


def _actor_user(actor):
    """The user behind ``actor`` (None for an API key or the system)."""
    return actor if isinstance(actor, get_user_model()) else None


def _lock_agent(agent) -> None:
    """Serialise version numbering and activation per agent: the organisation's row, then the agent's,
    in the order every write takes them (``lock_for_write``; SQLite serialises writes)."""
    lock_for_write(organization=agent.organization_id, agent=agent)


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Unknown persona field(s): {', '.join(unknown)}")


def persona_is_used(persona: Persona) -> bool:
    """True when an execution has run with this version or a release holds it (it is then immutable):
    ``personas.selectors.persona_is_used``, the one rule."""
    return selectors.persona_is_used(persona=persona)


def _next_version(agent) -> int:
    return selectors.persona_next_version(agent=agent)


def _deactivate_others(persona: Persona) -> None:
    Persona.objects.filter(agent_id=persona.agent_id, is_active=True).exclude(pk=persona.pk).update(
        is_active=False
    )


@retry_on_conflict
@transaction.atomic
def persona_create(
    *,
    agent,
    actor,
    name: str,
    system_prompt: str,
    activate: bool | None = None,
    **fields: Any,
) -> Persona:
    """Create the agent's next persona version.

    ``activate``: True makes it the active version (deactivating the others), False leaves it
    inactive, None (the default) activates it only when the agent has no active version yet — so an
    agent's first persona is usable at once.
    """
    _check_fields(fields)
    _lock_agent(agent)
    if activate is None:
        activate = not Persona.objects.filter(agent=agent, is_active=True).exists()
    persona = Persona(
        agent=agent,
        version=_next_version(agent),
        name=name,
        system_prompt=system_prompt,
        created_by=_actor_user(actor),
        is_active=False,
        **fields,
    )
    persona.full_clean()
    if activate:
        _deactivate_others(persona)
        persona.is_active = True
    persona.save()
    audit_record(
        organization=agent.organization,
        action="persona.create",
        actor=actor,
        obj=persona,
        after=snapshot(persona),
    )
    return persona


@retry_on_conflict
@transaction.atomic
def persona_update(*, persona: Persona, actor, **fields: Any) -> Persona:
    """Edit a persona; returns the persona that now holds the edit.

    An unused version is edited in place. A version used by an execution is immutable: the edit
    becomes the agent's next version (which takes over the active flag when the edited version was
    active) and that new version is returned. Nothing changes when the values are the same.
    """
    _check_fields(fields)
    _lock_agent(persona.agent)
    persona = Persona.objects.select_related("agent__organization").get(pk=persona.pk)
    changed = {k: v for k, v in fields.items() if _normalise(getattr(persona, k)) != _normalise(v)}
    if not changed:
        return persona
    if persona_is_used(persona):
        before = snapshot(persona)
        values = {f: getattr(persona, f) for f in EDITABLE_FIELDS} | changed
        successor = Persona(
            agent=persona.agent,
            version=_next_version(persona.agent),
            created_by=_actor_user(actor),
            is_active=False,
            **values,
        )
        successor.full_clean()
        if persona.is_active:
            _deactivate_others(successor)
            successor.is_active = True
        successor.save()
        audit_record(
            organization=persona.agent.organization,
            action="persona.create",
            actor=actor,
            obj=successor,
            before=before,
            after=snapshot(successor),
        )
        return successor
    return audited_update(
        persona, organization=persona.agent.organization, actor=actor, action="persona.update", fields=changed
    )


@retry_on_conflict
@transaction.atomic
def persona_activate(*, persona: Persona, actor) -> Persona:
    """Make ``persona`` the agent's active version; the previously active one is deactivated."""
    _lock_agent(persona.agent)
    persona.refresh_from_db()
    if persona.is_active:
        return persona
    previous = Persona.objects.filter(agent_id=persona.agent_id, is_active=True).first()
    _deactivate_others(persona)
    return audited_update(
        persona,
        organization=persona.agent.organization,
        actor=actor,
        action="persona.activate",
        fields={"is_active": True},
        validate=None,
        before_extra={"previous_active_version": previous.version if previous else None},
    )


@retry_on_conflict
@transaction.atomic
def persona_delete(*, persona: Persona, actor) -> None:
    """Delete an unused persona version.

    A version an execution has used stays (the trace needs it), and the active version of an active
    agent stays (the agent would have nothing to run): both raise ``ConflictError``.
    """
    _lock_agent(persona.agent)
    if persona_is_used(persona):
        raise ConflictError(
            f"Version {persona.version} of this persona has been used by executions or is part of a "
            "release, and cannot be deleted; create and activate a new version instead."
        )
    if persona.is_active and persona.agent.status == "active":
        raise ConflictError(
            f"Version {persona.version} is the active persona of an active agent; activate another "
            "version (or deprecate the agent) before deleting it."
        )
    before = snapshot(persona)
    organization = persona.agent.organization
    audit_record(organization=organization, action="persona.delete", actor=actor, obj=persona, before=before)
    persona.delete()


def _normalise(value: Any) -> Any:
    if isinstance(value, (Decimal, float)):
        return Decimal(str(value)).normalize()
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value.normalize())
    return str(value)


def persona_diff(*, persona: Persona, other: Persona) -> dict[str, Any]:
    """Compare two versions of the same agent's persona, field by field.

    Returns ``{"from_version", "to_version", "changes": [{"field", "before", "after", "diff"}]}``
    going from ``other`` to ``persona``; ``diff`` is a unified diff (line by line), only fields that
    differ are listed.
    """
    if persona.agent_id != other.agent_id:
        raise ValueError("Only versions of the same agent's persona can be compared.")
    changes = []
    for field in EDITABLE_FIELDS:
        before, after = _as_text(getattr(other, field)), _as_text(getattr(persona, field))
        if before == after:
            continue
        diff = "\n".join(
            difflib.unified_diff(
                before.splitlines(),
                after.splitlines(),
                fromfile=f"v{other.version}/{field}",
                tofile=f"v{persona.version}/{field}",
                lineterm="",
            )
        )
        changes.append({"field": field, "before": before, "after": after, "diff": diff})
    return {"from_version": other.version, "to_version": persona.version, "changes": changes}
