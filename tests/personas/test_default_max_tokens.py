"""The default answer length (PRISMA_GLOW_DEFAULT_MAX_TOKENS) is shown wherever a persona is edited."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from drf_spectacular.generators import SchemaGenerator

from personas.models import default_max_tokens
from tests.factories import AgentFactory, PersonaFactory

pytestmark = pytest.mark.django_db


def test_default_is_1024_and_a_persona_without_its_own_uses_it(org, settings):
    agent = AgentFactory(organization=org)
    assert default_max_tokens() == 1024
    assert PersonaFactory(agent=agent, max_tokens=None).effective_max_tokens == 1024
    assert PersonaFactory(agent=agent, max_tokens=300).effective_max_tokens == 300
    settings.DEFAULT_MAX_TOKENS = 512
    assert PersonaFactory(agent=agent, max_tokens=None).effective_max_tokens == 512


@pytest.mark.parametrize("path", ["personas/new/", None])
def test_the_persona_form_shows_the_default(staff_client, org, settings, path):
    agent = AgentFactory(organization=org)
    persona = PersonaFactory(agent=agent, is_active=True, max_tokens=None)
    url = f"/admin/agents/agent/{agent.pk}/" + (path or f"personas/{persona.pk}/edit/")
    html = staff_client.get(url).content.decode()
    assert 'placeholder="1024"' in html and "Blank: the default of 1,024" in html
    settings.DEFAULT_MAX_TOKENS = 2048
    html = staff_client.get(url).content.decode()
    assert 'placeholder="2048"' in html and "Blank: the default of 2,048" in html


def test_the_wizard_shows_the_default(staff_client, org):
    html = staff_client.get("/admin/agents/agent/wizard/persona/", follow=True).content.decode()
    assert "Blank: the default of 1,024" in html


def test_the_api_schema_describes_the_default():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"]["Persona"]["properties"]["max_tokens"]
    assert "1024" in field["description"] and "PRISMA_GLOW_DEFAULT_MAX_TOKENS" in field["description"]


@pytest.mark.parametrize(("value", "ok"), [("0", False), ("128001", False), ("4096", True)])
def test_the_setting_is_checked_at_startup(value, ok, tmp_path):
    """A default outside what a persona may set stops the settings from loading, with the reason."""
    env = {**os.environ, "PRISMA_GLOW_DEFAULT_MAX_TOKENS": value, "PRISMA_GLOW_VAR_DIR": str(tmp_path)}
    code = "from django.conf import settings; print(settings.DEFAULT_MAX_TOKENS)"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**env, "DJANGO_SETTINGS_MODULE": "prisma_glow.settings"},
        capture_output=True, text=True, cwd=settings_dir(), timeout=60,
    )  # fmt: skip
    if ok:
        assert result.returncode == 0 and result.stdout.strip() == value
    else:
        assert result.returncode != 0
        assert "PRISMA_GLOW_DEFAULT_MAX_TOKENS must be between 1 and 128000" in result.stderr


def settings_dir():
    import prisma_glow

    return os.path.dirname(os.path.dirname(prisma_glow.__file__))
