"""ASVS 5.0 V8 (authorization) for persona versions (issue 18): who may change a version or make one
current, through the staff pages and the API alike; another organisation's versions are not found.
And V16: an in-place edit is logged with who, before and after."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from personas.models import Persona
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import AgentFactory, APIKeyFactory, MembershipFactory, PersonaFactory, UserFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

PROMPT = "You are the firm's careful VAT assistant. Cite the guidance."
FORM = {
    "persona_name": "Default",
    "system_prompt": "You are changed. Cite the guidance.",
    "tone": "",
    "audience": "",
    "language": "en",
    "temperature": "0.20",
    "max_tokens": "",
    "model_override": "",
}


def _state(agent) -> list[dict]:
    return [model_to_dict(p) | {"updated_at": p.updated_at} for p in Persona.objects.filter(agent=agent)]


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=True, system_prompt=PROMPT)  # v1: a draft
    PersonaFactory(agent=agent, system_prompt=PROMPT + " Two.")  # v2: a draft, not current
    return agent


def test_v8_2_1_changing_a_version_needs_an_editor_or_a_write_key(
    agent, org, viewer_admin_client, viewer_client
):
    """ASVS 5.0 V8.2.1: function-level access — a viewer (staff pages and API) and a `read` key may
    read the versions and their states, but editing, making current or deleting one answers 403 and
    changes nothing."""
    v1, v2 = agent.personas.get(version=1), agent.personas.get(version=2)
    before = _state(agent)
    page = f"/admin/agents/agent/{agent.pk}/personas/"
    assert viewer_admin_client.get(page).status_code == 200
    read_key = client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)
    api = f"/api/v1/agents/{agent.pk}/personas/"
    for response in (
        viewer_admin_client.get(f"{page}{v1.pk}/edit/"),
        viewer_admin_client.post(f"{page}{v1.pk}/edit/", FORM),
        viewer_admin_client.post(f"{page}new/", FORM),
        viewer_admin_client.post(f"{page}{v2.pk}/activate/"),
        viewer_client.patch(f"{api}1/", {"system_prompt": "Changed by a viewer."}, format="json"),
        viewer_client.post(f"{api}2/activate/"),
        read_key.patch(f"{api}1/", {"system_prompt": "Changed by a read key."}, format="json"),
        read_key.delete(f"{api}2/"),
    ):
        assert response.status_code == 403, response
    assert read_key.get(f"{api}1/").status_code == 200
    assert _state(agent) == before


def test_v8_4_1_another_organisations_versions_are_not_found(agent, other_org):
    """ASVS 5.0 V8.4.1: cross-tenant access — an owner and a write key of another organisation get 404
    for the versions page, the editor, its save, making current and the API, and nothing changes."""
    outsider = UserFactory(username="their-owner")
    MembershipFactory(user=outsider, organization=other_org, role="owner")
    staff = login(outsider)
    key = client_for(key=APIKeyFactory(organization=other_org, scopes=["read", "write"]).plaintext)
    v1 = agent.personas.get(version=1)
    before = _state(agent)
    page = f"/admin/agents/agent/{agent.pk}/personas/"
    api = f"/api/v1/agents/{agent.pk}/personas/"
    for response in (
        staff.get(page),
        staff.get(f"{page}{v1.pk}/edit/"),
        staff.post(f"{page}{v1.pk}/edit/", FORM),
        staff.post(f"{page}{v1.pk}/activate/"),
        key.get(api),
        key.patch(f"{api}1/", {"system_prompt": "Changed from elsewhere."}, format="json"),
    ):
        assert response.status_code == 404, response
    assert _state(agent) == before


def test_v16_2_1_an_in_place_edit_is_logged_with_who_before_and_after(agent, editor):
    """ASVS 5.0 V16.2.1: security events logged — an in-place edit of a draft from the staff page is an
    audit event naming the editor, with the version's values before and after."""
    v2 = agent.personas.get(version=2)
    response = login(editor).post(f"/admin/agents/agent/{agent.pk}/personas/{v2.pk}/edit/", FORM)
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="persona.update", object_id=str(v2.pk))
    assert event.actor_user == editor and event.actor_label == editor.get_username()
    assert event.before["system_prompt"] == PROMPT + " Two."
    assert event.after["system_prompt"] == FORM["system_prompt"]
