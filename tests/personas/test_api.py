"""``/api/v1/agents/{id}/personas/``: nested CRUD, versioning, immutability, activation and diff."""

from __future__ import annotations

import pytest

from agents.services import release_create
from personas.models import Persona
from tests.factories import AgentFactory, ExecutionFactory, PersonaFactory
from tests.support.api import APIResourceTests, assert_error, results

pytestmark = pytest.mark.django_db


class TestPersonaAPI(APIResourceTests):
    model = Persona
    url = "/api/v1/agents/{parent.pk}/personas/"
    lookup_attr = "version"
    organization_lookup = "agent__organization"
    parent_lookup = "agent"
    create_data = {"name": "Senior VAT specialist", "system_prompt": "You are a senior VAT specialist."}
    update_data = {"tone": "friendly", "system_prompt": "You are a VAT specialist. Cite the manual."}
    invalid_data = {"name": "", "temperature": "5"}

    def make_parent(self, organization):
        return AgentFactory(organization=organization)

    def make_object(self, organization, parent=None):
        # Versions are numbered per agent: another organisation's persona gets a number the caller's
        # agent does not have, so "under the caller's agent" really asks for a missing version.
        if organization != self.org:
            return PersonaFactory(agent=parent, version=parent.personas.count() + 50)
        return PersonaFactory(agent=parent)


def _url(agent, version=None, suffix=""):
    base = f"/api/v1/agents/{agent.pk}/personas/"
    return base if version is None else f"{base}{version}/{suffix}"


def test_versions_count_up_and_first_is_active(org, editor_client):
    """Each create is the agent's next version; the first becomes active, later ones only on request."""
    agent = AgentFactory(organization=org)
    first = editor_client.post(_url(agent), {"name": "A", "system_prompt": "a"}, format="json").json()
    second = editor_client.post(_url(agent), {"name": "B", "system_prompt": "b"}, format="json").json()
    third = editor_client.post(
        _url(agent), {"name": "C", "system_prompt": "c", "activate": True}, format="json"
    ).json()
    assert [first["version"], second["version"], third["version"]] == [1, 2, 3]
    assert [first["is_active"], second["is_active"], third["is_active"]] == [True, False, True]
    assert list(Persona.objects.filter(agent=agent, is_active=True).values_list("version", flat=True)) == [3]


def test_used_version_is_immutable_and_edit_makes_next_version(org, editor_client):
    """Editing a version an execution used leaves it as it was and returns the new version."""
    agent = AgentFactory(organization=org)
    used = PersonaFactory(agent=agent, is_active=True, system_prompt="Original")
    ExecutionFactory(agent=agent, persona=used)
    response = editor_client.patch(_url(agent, 1), {"system_prompt": "Edited"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 2 and body["system_prompt"] == "Edited" and body["is_active"] is True
    assert body["is_used"] is False
    used.refresh_from_db()
    assert used.system_prompt == "Original" and not used.is_active
    assert editor_client.get(_url(agent, 1)).json()["is_used"] is True


def test_unused_version_is_edited_in_place(org, editor_client):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent)
    response = editor_client.patch(_url(agent, 1), {"system_prompt": "Edited"}, format="json")
    assert response.json()["version"] == 1 and Persona.objects.filter(agent=agent).count() == 1


def test_a_version_a_release_holds_is_used_and_an_edit_makes_the_next(org, editor_client, editor):
    """``is_used`` is the service's rule: a version in a release is used before any run, and a PATCH
    answers the next version, leaving the released one unchanged."""
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True, system_prompt="You are the firm's careful assistant.")
    assert editor_client.get(_url(agent, 1)).json()["is_used"] is False
    release_create(agent=agent, actor=editor)
    assert editor_client.get(_url(agent, 1)).json()["is_used"] is True
    assert [p["is_used"] for p in results(editor_client.get(_url(agent)))] == [True]
    body = editor_client.patch(_url(agent, 1), {"system_prompt": "Edited"}, format="json").json()
    assert body["version"] == 2 and body["is_used"] is False
    assert (
        Persona.objects.get(agent=agent, version=1).system_prompt == "You are the firm's careful assistant."
    )


def test_delete_used_version_409(org, editor_client):
    agent = AgentFactory(organization=org)
    persona = PersonaFactory(agent=agent)
    ExecutionFactory(agent=agent, persona=persona)
    assert_error(editor_client.delete(_url(agent, 1)), 409)
    assert Persona.objects.filter(pk=persona.pk).exists()


def test_activate_keeps_exactly_one_active(org, editor_client):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, version=1, is_active=True)
    PersonaFactory(agent=agent, version=2)
    response = editor_client.post(_url(agent, 2, "activate/"))
    assert response.status_code == 200 and response.json()["is_active"] is True
    rows = results(editor_client.get(_url(agent)))
    assert [(r["version"], r["is_active"]) for r in rows] == [(2, True), (1, False)]


def test_diff_against_a_version(org, viewer_client):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, version=1, system_prompt="Line one\nLine two", tone="formal")
    PersonaFactory(agent=agent, version=2, system_prompt="Line one\nLine 2", tone="formal")
    PersonaFactory(agent=agent, version=3, system_prompt="Line one\nLine 2", tone="friendly")
    body = viewer_client.get(_url(agent, 3, "diff/"), {"against": 1}).json()
    assert (body["from_version"], body["to_version"]) == (1, 3)
    changes = {c["field"]: c for c in body["changes"]}
    assert set(changes) == {"system_prompt", "tone"}
    assert "-Line two" in changes["system_prompt"]["diff"] and "+Line 2" in changes["system_prompt"]["diff"]
    default = viewer_client.get(_url(agent, 3, "diff/")).json()
    assert default["from_version"] == 2 and [c["field"] for c in default["changes"]] == ["tone"]
    assert_error(viewer_client.get(_url(agent, 3, "diff/"), {"against": 9}), 404, fields=("against",))
    assert_error(viewer_client.get(_url(agent, 3, "diff/"), {"against": "x"}), 400, fields=("against",))


def test_other_organisations_agent_404_for_every_persona_url(other_org, editor_client):
    agent = AgentFactory(organization=other_org)
    PersonaFactory(agent=agent)
    assert_error(editor_client.get(_url(agent)), 404)
    assert_error(editor_client.post(_url(agent), {"name": "x", "system_prompt": "y"}, format="json"), 404)
    assert_error(editor_client.post(_url(agent, 1, "activate/")), 404)
    assert_error(editor_client.get(_url(agent, 1, "diff/")), 404)
