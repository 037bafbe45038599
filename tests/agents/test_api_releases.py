"""``/api/v1/agents/{agent_pk}/releases/``: list, create, detail and diff, with their rights."""

from __future__ import annotations

import pytest

from agents.models import LearningExampleStatus, Release
from agents.services import learning_example_create, release_create
from personas.services import persona_create
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    AgentToolFactory,
    APIKeyFactory,
    ExecutionFactory,
    GuardrailFactory,
    PersonaFactory,
    ToolFactory,
    release_now,
)
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
IBAN_MASKED = "DE89 •••• 3000"
LONG_PROMPT = "You are a VAT specialist. Answer in plain English and cite the firm's guidance."


@pytest.fixture
def agent(org):
    agent = AgentFactory(organization=org, name="VAT adviser")
    PersonaFactory(agent=agent, is_active=True, system_prompt=LONG_PROMPT)
    return agent


def _url(agent, suffix=""):
    return f"/api/v1/agents/{agent.pk}/releases/{suffix}"


def _new_persona(agent, prompt):
    return persona_create(agent=agent, actor=None, name="Senior", system_prompt=prompt, activate=True)


# --- Create ---------------------------------------------------------------------------------------


def test_editor_creates_release_with_notes_201_audited(agent, editor, editor_client):
    """An editor's POST freezes the draft as release 1 (201, the detail with its snapshot), audited."""
    response = editor_client.post(_url(agent), {"notes": "First cut, reviewed by A. Keller."}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1 and body["notes"] == "First cut, reviewed by A. Keller."
    assert body["author"] == editor.username and body["is_active"] is False
    assert len(body["hash"]) == 64 and body["hash"] == Release.objects.get(agent=agent).content_hash
    assert body["snapshot"]["persona"]["system_prompt"] == LONG_PROMPT
    event = AuditEvent.objects.get(action="release.create")
    assert event.actor_user == editor and event.after["number"] == 1


def test_create_twice_without_change_409_names_the_release(agent, editor_client):
    """Nothing changed since release 1: a second release is refused (409) saying which to activate."""
    assert editor_client.post(_url(agent), {}, format="json").status_code == 201
    body = assert_error(editor_client.post(_url(agent), {"notes": "again"}, format="json"), 409)
    assert "release 1" in body["message"]
    assert Release.objects.filter(agent=agent).count() == 1


def test_create_without_active_persona_409(org, editor_client):
    """An agent without an active persona has nothing to release (409, saying so)."""
    bare = AgentFactory(organization=org)
    body = assert_error(editor_client.post(_url(bare), {}, format="json"), 409)
    assert "persona" in body["message"]


@pytest.mark.parametrize(
    "payload, field",
    [({"notes": 12}, "notes"), ({"notes": "x" * 10_001}, "notes"), ({"notes": None}, "notes")],
)
def test_create_with_bad_notes_400(agent, editor_client, payload, field):
    """Notes must be text of at most 10 000 characters: anything else is a 400 naming ``notes``."""
    assert_error(editor_client.post(_url(agent), payload, format="json"), 400, fields=(field,))
    assert not Release.objects.filter(agent=agent).exists()


def test_create_malformed_json_400(agent, editor_client):
    response = editor_client.post(_url(agent), "{not json", content_type="application/json")
    assert_error(response, 400)


def test_viewer_cannot_create_403(agent, viewer_client):
    assert_error(viewer_client.post(_url(agent), {}, format="json"), 403)
    assert not Release.objects.filter(agent=agent).exists()


def test_anonymous_is_refused(agent, api_client):
    """No credentials: 401 (or 403) for reading and creating alike, in the error shape."""
    for response in (api_client.get(_url(agent)), api_client.post(_url(agent), {}, format="json")):
        assert response.status_code in (401, 403)
        assert_error(response, response.status_code)


def test_other_organisations_agent_and_release_404(agent, other_org, editor_client):
    """Another organisation's agent is not found, nor its releases, nor can one be created there."""
    foreign = AgentFactory(organization=other_org)
    PersonaFactory(agent=foreign, is_active=True)
    release_create(agent=foreign, actor=None)
    assert_error(editor_client.get(_url(foreign)), 404)
    assert_error(editor_client.get(_url(foreign, "1/")), 404)
    assert_error(editor_client.get(_url(foreign, "1/diff/?against=1")), 404)
    assert_error(editor_client.post(_url(foreign), {}, format="json"), 404)
    assert Release.objects.filter(agent=foreign).count() == 1


@pytest.mark.parametrize(
    "scopes, read, write",
    [(["read"], 200, 403), (["write"], 403, 201), (["read", "write"], 200, 201), (["execute"], 403, 403)],
)
def test_api_key_scopes(org, agent, scopes, read, write):
    """``read`` lists and opens releases, ``write`` creates them; other scopes neither."""
    key = APIKeyFactory(organization=org, scopes=scopes)
    client = client_for(key=key.plaintext)
    assert client.get(_url(agent)).status_code == read
    assert client.post(_url(agent), {"notes": "From CI"}, format="json").status_code == write


# --- List and detail -----------------------------------------------------------------------------


def test_list_newest_first_paginated_with_active_flag(agent, viewer_client):
    """Newest first, page-numbered; ``is_active`` marks the release the agent runs."""
    first = release_now(agent)
    for n in range(2, 5):
        _new_persona(agent, f"{LONG_PROMPT} Version {n}.")
        release_create(agent=agent, actor=None)
    response = viewer_client.get(_url(agent), {"page_size": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [r["number"] for r in body["results"]] == [4, 3, 2]
    assert all(r["is_active"] is False for r in body["results"])
    assert "snapshot" not in body["results"][0]
    page2 = viewer_client.get(_url(agent), {"page_size": 3, "page": 2}).json()
    assert [(r["number"], r["is_active"]) for r in page2["results"]] == [(first.number, True)]


def test_list_query_count_does_not_grow(agent, viewer_client, django_assert_max_num_queries):
    """The list costs the same number of queries for 2 releases as for 6."""
    release_now(agent)
    _new_persona(agent, "Two.")
    release_create(agent=agent, actor=None)
    with django_assert_max_num_queries(12) as small:
        assert viewer_client.get(_url(agent)).status_code == 200
    for n in range(3, 7):
        _new_persona(agent, f"Version {n}.")
        release_create(agent=agent, actor=None)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(viewer_client.get(_url(agent)).json()["results"]) == 6


def test_detail_holds_the_snapshot_without_secrets(org, agent, viewer_client):
    """The detail shows the whole snapshot (tools with settings and definitions, guardrails with
    their configuration) but never a tool's secret headers."""
    tool = ToolFactory(
        organization=org, name="VIES check", secret_headers='{"Authorization": "Bearer s3cr3t"}'
    )
    AgentToolFactory(agent=agent, tool=tool, settings={"timeout": 10})
    release_create(agent=agent, actor=None, notes="With VIES")
    response = viewer_client.get(_url(agent, "1/"))
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == 1 and body["notes"] == "With VIES"
    (entry,) = body["snapshot"]["tools"]
    assert entry["settings"] == {"timeout": 10} and entry["tool"]["name"] == "VIES check"
    assert "s3cr3t" not in response.content.decode() and "secret_headers" not in entry["tool"]


def test_unknown_release_404(agent, viewer_client):
    release_create(agent=agent, actor=None)
    assert_error(viewer_client.get(_url(agent, "2/")), 404)
    assert_error(viewer_client.get(_url(agent, "abc/")), 404)


def test_examples_in_full_for_editors_masked_for_viewers_and_keys(org, agent, editor_client, viewer_client):
    """An approved example's IBAN is in full for an editor on the detail, masked for a viewer and an
    API key (agents.privacy), and masked in the list's absence of snapshots anyway."""
    learning_example_create(
        agent=agent,
        actor=None,
        input=f"Refund to {IBAN}?",
        output=f"Yes, to {IBAN}.",
        status=LearningExampleStatus.APPROVED,
    )
    release_create(agent=agent, actor=None)
    editor_body = editor_client.get(_url(agent, "1/")).json()
    assert editor_body["snapshot"]["examples"][0]["input"] == f"Refund to {IBAN}?"
    for client in (viewer_client, client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)):
        response = client.get(_url(agent, "1/"))
        assert IBAN not in response.content.decode()
        assert response.json()["snapshot"]["examples"][0]["output"] == f"Yes, to {IBAN_MASKED}."


# --- Diff ---------------------------------------------------------------------------------------


def test_diff_field_by_field(org, agent, viewer_client):
    """The diff names each changed field: the persona's prompt and version, a tool added with its
    settings, a guardrail's configuration changed, an assignment's settings changed."""
    tool = ToolFactory(organization=org, name="VIES check")
    assignment = AgentToolFactory(agent=agent, tool=tool, settings={"timeout": 30})
    guardrail = GuardrailFactory(organization=org, name="Client identifiers")
    from tests.factories import AgentGuardrailFactory

    AgentGuardrailFactory(agent=agent, guardrail=guardrail)
    release_create(agent=agent, actor=None)
    _new_persona(agent, "You are a senior VAT specialist.")
    assignment.settings = {"timeout": 10}
    assignment.save()
    guardrail.config = {**guardrail.config, "threshold": 0.9}
    guardrail.save()
    lookup = ToolFactory(organization=org, name="FX rates")
    AgentToolFactory(agent=agent, tool=lookup, settings={"currency": "EUR"}, order=2)
    release_create(agent=agent, actor=None)

    response = viewer_client.get(_url(agent, "2/diff/"), {"against": 1})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["from"], body["to"], body["identical"]) == (1, 2, False)
    persona = {c["field"]: c for c in body["persona"]}
    assert persona["system_prompt"] == {
        "field": "system_prompt",
        "before": LONG_PROMPT,
        "after": "You are a senior VAT specialist.",
    }
    assert persona["version"]["before"] == 1 and persona["version"]["after"] == 2
    assert [t["name"] for t in body["tools"]["added"]] == ["FX rates"]
    assert body["tools"]["added"][0]["settings"] == {"currency": "EUR"}
    (changed_tool,) = body["tools"]["changed"]
    assert changed_tool["name"] == "VIES check"
    assert {"field": "settings.timeout", "before": 30, "after": 10} in changed_tool["changes"]
    (changed_guardrail,) = body["guardrails"]["changed"]
    assert any(
        c["field"] == "guardrail.config.threshold" and c["after"] == 0.9 for c in changed_guardrail["changes"]
    )
    assert body["knowledge"] == {"added": [], "removed": [], "changed": []}


def test_diff_defaults_to_the_previous_release_and_reverse_swaps(agent, viewer_client):
    release_create(agent=agent, actor=None)
    _new_persona(agent, "Changed.")
    release_create(agent=agent, actor=None)
    body = viewer_client.get(_url(agent, "2/diff/")).json()
    assert (body["from"], body["to"]) == (1, 2)
    reverse = viewer_client.get(_url(agent, "1/diff/"), {"against": 2}).json()
    prompt = next(c for c in reverse["persona"] if c["field"] == "system_prompt")
    assert (prompt["before"], prompt["after"]) == ("Changed.", LONG_PROMPT)
    same = viewer_client.get(_url(agent, "2/diff/"), {"against": 2}).json()
    assert same["identical"] is True and same["persona"] == []


@pytest.mark.parametrize("against", ["abc", "0", "-1", "1.5", "99999999999"])
def test_diff_bad_against_400(agent, viewer_client, against):
    """A malformed ``against`` is a 400 naming it, in the error shape."""
    release_create(agent=agent, actor=None)
    assert_error(viewer_client.get(_url(agent, "1/diff/"), {"against": against}), 400, fields=("against",))


def test_diff_unknown_against_404_and_first_release_404(agent, viewer_client):
    """No release to compare with, named or (for the first release) implied: 404 naming ``against``
    (the first release's well-formed request was a 400, found by schemathesis)."""
    release_create(agent=agent, actor=None)
    body = assert_error(viewer_client.get(_url(agent, "1/diff/"), {"against": 7}), 404, fields=("against",))
    assert "no release 7" in body["errors"]["against"][0]
    body = assert_error(viewer_client.get(_url(agent, "1/diff/")), 404, fields=("against",))
    assert "is the agent's first" in body["errors"]["against"][0]


def test_diff_masks_examples_for_viewers(agent, viewer_client, editor_client):
    release_create(agent=agent, actor=None)
    learning_example_create(
        agent=agent, actor=None, input=f"Pay {IBAN}?", output="Yes.", status=LearningExampleStatus.APPROVED
    )
    release_create(agent=agent, actor=None)
    viewer_body = viewer_client.get(_url(agent, "2/diff/")).json()
    assert viewer_body["examples"]["added"][0]["input"] == f"Pay {IBAN_MASKED}?"
    editor_body = editor_client.get(_url(agent, "2/diff/")).json()
    assert editor_body["examples"]["added"][0]["input"] == f"Pay {IBAN}?"


def test_executions_show_their_release(agent, viewer_client):
    """An execution of a release carries its number (the foundation's field), for the admin's link."""
    release = release_now(agent)
    ExecutionFactory(agent=agent, release=release)
    assert viewer_client.get("/api/v1/executions/").json()["results"][0]["release"] == release.number
