"""Persona versions: numbered per agent, one active, temperature in range."""

from __future__ import annotations

from decimal import Decimal

import pytest

from personas.models import Persona
from tests.factories import AgentFactory, PersonaFactory
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid

pytestmark = pytest.mark.django_db


def _persona(agent, **values):
    return Persona(agent=agent, **{"version": 1, "name": "Default", "system_prompt": "Be careful.", **values})


def test_version_is_unique_per_agent():
    """An agent cannot have two personas with the same version; another agent can."""
    existing = PersonaFactory(version=1)
    assert_db_rejects(lambda: _persona(existing.agent, version=1).save())
    assert_conflict(
        _persona(existing.agent, version=1),
        "This agent already has a persona with that version number.",
        field="version",
    )
    _persona(AgentFactory(organization=existing.agent.organization), version=1).full_clean()


def test_only_one_active_persona_per_agent():
    """At most one version is active; any number may be inactive."""
    active = PersonaFactory(version=1, is_active=True)
    PersonaFactory(agent=active.agent, version=2, is_active=False)
    assert_db_rejects(lambda: _persona(active.agent, version=3, is_active=True).save())
    assert_conflict(
        _persona(active.agent, version=3, is_active=True),
        "An agent can have only one active persona.",
        field="is_active",
    )
    _persona(active.agent, version=3, is_active=False).full_clean()


@pytest.mark.parametrize("temperature", [Decimal("-0.1"), Decimal("2.01")])
def test_temperature_between_0_and_2(temperature):
    """Temperature outside 0–2 is refused by the database and by full_clean."""
    agent = AgentFactory()
    assert_db_rejects(lambda: _persona(agent, temperature=temperature).save())
    message = "greater than or equal to 0" if temperature < 0 else "less than or equal to 2"
    assert_invalid(_persona(agent, temperature=temperature), message, field="temperature")


def test_version_starts_at_one():
    """Version 0 is refused by the database."""
    agent = AgentFactory()
    assert_db_rejects(lambda: _persona(agent, version=0).save())


@pytest.mark.parametrize(
    ("value", "message"), [(0, "greater than or equal to 1"), (128001, "less than or equal to 128000")]
)
def test_max_tokens_bounds(value, message):
    """max_tokens is between 1 and 128,000 (or blank: the default, PRISMA_GLOW_DEFAULT_MAX_TOKENS)."""
    assert_invalid(_persona(AgentFactory(), max_tokens=value), message, field="max_tokens")
    _persona(AgentFactory(), max_tokens=None).full_clean()


def test_system_prompt_is_required():
    """A persona without a system prompt is invalid."""
    assert_invalid(
        _persona(AgentFactory(), system_prompt=""), "This field cannot be blank.", field="system_prompt"
    )
