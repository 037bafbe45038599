"""The persona versions page and the editor: each version's state, the trace of an in-place edit,
"this creates version N+1" before saving, and who may do what."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from agents.services import release_create
from personas.models import Persona
from personas.services import persona_create, persona_update
from prisma_glow.audit.models import AuditEvent
from tests.factories import (
    AgentFactory,
    ExecutionFactory,
    MembershipFactory,
    PersonaFactory,
    UserFactory,
    release_now,
)
from tests.support.admin import login

pytestmark = pytest.mark.django_db

FORM = {
    "persona_name": "Default",
    "system_prompt": "You are a senior VAT specialist. Cite the firm's guidance.",
    "tone": "precise",
    "audience": "tax managers",
    "language": "en",
    "temperature": "0.20",
    "max_tokens": "",
    "model_override": "",
}


def _versions_url(agent) -> str:
    return f"/admin/agents/agent/{agent.pk}/personas/"


def _edit_url(persona) -> str:
    return f"/admin/agents/agent/{persona.agent_id}/personas/{persona.pk}/edit/"


def _row(html: str, version: int) -> str:
    match = re.search(rf'<tr data-version="{version}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row for v{version}"
    return match.group(0)


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


@pytest.fixture
def released_agent(org, editor):
    """v1 used by a run and in live release 1; v2 in release 2 only (not live); v3 a draft, current."""
    agent = AgentFactory(organization=org, name="VAT adviser")
    v1 = persona_create(agent=agent, actor=editor, name="VAT specialist", system_prompt="First")
    release_now(agent)
    ExecutionFactory(agent=agent, persona=v1)
    persona_create(agent=agent, actor=editor, name="VAT specialist", system_prompt="Second", activate=True)
    release_create(agent=agent, actor=editor)
    persona_create(agent=agent, actor=editor, name="VAT specialist", system_prompt="Third", activate=True)
    agent.refresh_from_db()
    return agent


def test_each_version_shows_its_state_as_a_labelled_badge(staff_client, released_agent):
    """Draft, used (with why), live in release N, current: each version's badges and its button."""
    html = staff_client.get(_versions_url(released_agent)).content.decode()
    v1, v2, v3 = (_text(_row(html, n)) for n in (1, 2, 3))
    assert "Used — locked" in v1 and "Live — in release 1" in v1 and "Used by 1 run and in release 1" in v1
    assert "Current" not in v1 and "New version from v1" in v1 and "Make current" in v1
    assert "Used — locked" in v2 and "In release 2" in v2 and "Live" not in v2 and "Draft" not in v2
    assert "Draft — editable" in v3 and "Current" in v3 and "Used" not in v3
    assert "Edit" in v3 and "New version from" not in v3 and "Make current" not in v3
    assert 'data-state="draft"' in _row(html, 3) and 'data-state="used"' in _row(html, 1)
    # The legend says what each badge means.
    assert "saving an edit changes it in place" in html and "What API clients get" in html


def test_the_editor_says_before_saving_that_a_locked_version_makes_the_next(staff_client, released_agent):
    """Opening a locked version says that saving creates version N+1 and why the old one stays."""
    v1 = released_agent.personas.get(version=1)
    response = staff_client.get(_edit_url(v1))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Saving creates version 4; version 1 stays as it is (used by 1 run and in release 1)." in html
    assert "Save as v4" in html and "new persona version from v1" in html
    assert "Make it current" in html and "the next release takes it" in html
    v2 = released_agent.personas.get(version=2)
    assert "version 2 stays as it is (in release 2)." in staff_client.get(_edit_url(v2)).content.decode()
    new_page = staff_client.get(f"/admin/agents/agent/{released_agent.pk}/personas/new/").content.decode()
    assert "Saving creates version 4." in new_page


def test_a_locked_edit_creates_the_next_version_and_leaves_the_old_one_byte_identical(
    staff_client, released_agent
):
    """Saving over a used version creates v4 (the current one, as v3 was not the edited one) and
    leaves every column of v1 as it was; the page says what happened."""
    v1 = released_agent.personas.get(version=1)
    before = model_to_dict(v1) | {"updated_at": v1.updated_at, "created_at": v1.created_at}
    response = staff_client.post(_edit_url(v1), {**FORM, "system_prompt": "First, improved"}, follow=True)
    html = response.content.decode()
    assert (
        "Version 1 is locked (used by runs or in a release) and stays as it was: your edit was saved as version 4."
        in html
    )
    v1.refresh_from_db()
    assert model_to_dict(v1) | {"updated_at": v1.updated_at, "created_at": v1.created_at} == before
    v4 = Persona.objects.get(agent=released_agent, version=4)
    assert v4.system_prompt == "First, improved" and not v4.is_active
    assert "Draft — editable" in _text(_row(html, 4))


def test_editing_a_draft_says_in_place_and_the_list_shows_the_edit(staff_client, released_agent, editor):
    """A draft's editor says the save changes it in place; after saving, the same row holds the edit,
    it is audited, and the list says "edited <when> by <who>"."""
    v3 = released_agent.personas.get(version=3)
    html = staff_client.get(_edit_url(v3)).content.decode()
    assert (
        "Saving changes version 3 in place (no run has used it yet and no release holds it)" in html
        and "Save changes to v3" in html
    )
    assert "edited" not in _text(_row(staff_client.get(_versions_url(released_agent)).content.decode(), 3))
    response = staff_client.post(_edit_url(v3), {**FORM, "system_prompt": "Third, edited"}, follow=True)
    page = response.content.decode()
    assert "Version 3 was changed in place" in page
    assert Persona.objects.filter(agent=released_agent).count() == 3
    v3.refresh_from_db()
    assert v3.system_prompt == "Third, edited"
    event = AuditEvent.objects.get(action="persona.update", object_id=str(v3.pk))
    assert event.actor_user == editor and event.before["system_prompt"] == "Third"
    row = _text(_row(page, 3))
    assert f"by {editor.get_username()}" in row and re.search(r"edited \d+ \w+ \d{4} \d\d:\d\d", row)
    # The editor cannot read the audit log: the trace is text; an admin gets a link to the event.
    assert f"/admin/audit/auditevent/{event.pk}/change/" not in _row(page, 3)


def test_an_admin_gets_the_audit_event_of_the_last_edit(admin_role_client, released_agent, editor):
    """For those who may read the audit log, "edited …" links to the event with before and after."""
    v3 = released_agent.personas.get(version=3)
    admin_role_client.post(_edit_url(v3), {**FORM, "system_prompt": "Third, edited"})
    event = AuditEvent.objects.get(action="persona.update", object_id=str(v3.pk))
    html = admin_role_client.get(_versions_url(released_agent)).content.decode()
    assert f'href="/admin/audit/auditevent/{event.pk}/change/"' in _row(html, 3)
    assert admin_role_client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200


def test_saving_unchanged_values_says_nothing_changed(staff_client, org):
    """Saving a draft with the same values changes nothing, says so, and records no edit."""
    agent = AgentFactory(organization=org)
    v1 = PersonaFactory(agent=agent, is_active=True, name="Default", system_prompt=FORM["system_prompt"])
    values = {**FORM, "tone": v1.tone, "audience": v1.audience}
    html = staff_client.post(_edit_url(v1), values, follow=True).content.decode()
    assert "Nothing changed: version 1 is as it was." in html
    assert not AuditEvent.objects.filter(action="persona.update").exists()
    v2 = PersonaFactory(agent=agent, name="Default", system_prompt=FORM["system_prompt"])
    html = staff_client.post(_edit_url(v2), {**values, "activate": "on"}, follow=True).content.decode()
    assert "Version 2 is now current; its contents did not change." in html
    v2.refresh_from_db()
    assert v2.is_active and not AuditEvent.objects.filter(action="persona.update").exists()


def test_a_run_between_opening_and_saving_makes_the_save_a_new_version(staff_client, org):
    """The page's notice is a forecast: if a run uses the draft meanwhile, the service still refuses
    to change it, and the message says the edit became the next version."""
    agent = AgentFactory(organization=org)
    v1 = PersonaFactory(agent=agent, is_active=True)
    assert "Saving changes version 1 in place" in staff_client.get(_edit_url(v1)).content.decode()
    ExecutionFactory(agent=agent, persona=v1)
    html = staff_client.post(
        _edit_url(v1), {**FORM, "system_prompt": "You are a changed assistant of the firm."}, follow=True
    ).content.decode()
    assert "your edit was saved as version 2" in html
    v1.refresh_from_db()
    assert v1.system_prompt != "You are a changed assistant of the firm."


def test_a_viewer_sees_the_states_but_cannot_edit(viewer_admin_client, released_agent):
    """A viewer reads the versions and their states; no edit or make-current control, and the editor
    and its save are 403 with nothing changed."""
    html = viewer_admin_client.get(_versions_url(released_agent)).content.decode()
    assert "Draft — editable" in html and "Live — in release 1" in html
    assert "New version from" not in html and ">Edit<" not in html and "Make current" not in html
    v3 = released_agent.personas.get(version=3)
    assert viewer_admin_client.get(_edit_url(v3)).status_code == 403
    assert viewer_admin_client.post(_edit_url(v3), {**FORM, "system_prompt": "Hijacked"}).status_code == 403
    v3.refresh_from_db()
    assert v3.system_prompt == "Third" and released_agent.personas.count() == 3


def test_another_organisation_gets_404(org, other_org, released_agent):
    """A member of another organisation gets 404 for the versions, the editor, the save and the
    activation, and nothing changes."""
    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider, organization=other_org, role="owner")
    client = login(outsider)
    v3 = released_agent.personas.get(version=3)
    assert client.get(_versions_url(released_agent)).status_code == 404
    assert client.get(_edit_url(v3)).status_code == 404
    assert client.post(_edit_url(v3), {**FORM, "system_prompt": "Hijacked"}).status_code == 404
    v1 = released_agent.personas.get(version=1)
    assert (
        client.post(f"/admin/agents/agent/{released_agent.pk}/personas/{v1.pk}/activate/").status_code == 404
    )
    # A version of another agent under this agent's URL is a 404 too.
    foreign = PersonaFactory(agent=AgentFactory(organization=other_org))
    owner_client = login(MembershipFactory(organization=org, role="owner").user)
    assert (
        owner_client.get(f"/admin/agents/agent/{released_agent.pk}/personas/{foreign.pk}/edit/").status_code
        == 404
    )
    v3.refresh_from_db()
    assert v3.system_prompt == "Third" and released_agent.personas.count() == 3


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_page_costs_the_same_queries_however_many_versions(staff_client, org, editor):
    """The versions page (and its diff) costs the same number of queries for 3 versions as for 12,
    each with runs, releases and edits."""

    def agent_with(count: int):
        agent = AgentFactory(organization=org)
        for n in range(count):
            persona = persona_create(
                agent=agent, actor=editor, name="Default", system_prompt=f"v{n}", activate=True
            )
            if n % 3 == 0:
                persona_update(persona=persona, actor=editor, tone="edited")
            ExecutionFactory(agent=agent, persona=persona)
            if n % 4 == 0:
                release_now(agent)
        return agent

    small, large = agent_with(3), agent_with(12)
    for suffix in ("", "?a=1&b=2"):
        few = _queries(staff_client, _versions_url(small) + suffix)
        many = _queries(staff_client, _versions_url(large) + suffix)
        assert few == many, (suffix, few, many)
