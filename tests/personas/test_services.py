"""Persona services: versions, immutability, one active version."""

from __future__ import annotations

import pytest

from personas.models import Persona
from personas.services import persona_activate, persona_create, persona_delete, persona_diff, persona_update
from prisma_glow.exceptions import ConflictError as Conflict
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
)

pytestmark = pytest.mark.django_db


def test_persona_versions_and_immutability(org, editor):
    """Versions count from 1; a used version is edited into the next one, which becomes active."""
    agent = AgentFactory(organization=org)
    v1 = persona_create(agent=agent, actor=editor, name="Default", system_prompt="Line one")
    assert v1.version == 1 and v1.is_active
    same = persona_update(persona=v1, actor=editor, system_prompt="Line one, edited")
    assert same.pk == v1.pk and same.version == 1
    ExecutionFactory(agent=agent, persona=v1)
    v2 = persona_update(persona=v1, actor=editor, system_prompt="Line two")
    assert v2.version == 2 and v2.is_active
    v1.refresh_from_db()
    assert v1.system_prompt == "Line one, edited" and not v1.is_active
    with pytest.raises(Conflict):
        persona_delete(persona=v1, actor=editor)
    diff = persona_diff(persona=v2, other=v1)
    assert diff["changes"][0]["field"] == "system_prompt"
    assert "-Line one, edited" in diff["changes"][0]["diff"] and "+Line two" in diff["changes"][0]["diff"]


def test_persona_activate_keeps_one_active(org, editor):
    """Activating a version deactivates the others."""
    agent = AgentFactory(organization=org)
    v1 = persona_create(agent=agent, actor=editor, name="A", system_prompt="a")
    v2 = persona_create(agent=agent, actor=editor, name="B", system_prompt="b")
    assert not v2.is_active
    persona_activate(persona=v2, actor=editor)
    assert list(Persona.objects.filter(agent=agent, is_active=True)) == [v2]
    v1.refresh_from_db()
    assert not v1.is_active
