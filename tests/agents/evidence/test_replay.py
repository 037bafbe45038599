"""Replay (``agents.replay``): a past execution's input, as of its day, run again against a release, as a
test run linked to the original; who may replay, and identifiers that never leak across."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from agents.models import Execution
from agents.replay import REPLAY_REFUSED
from agents.runtime import execute
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_verify_chain
from tests.agents.evidence.conftest import IBAN, QUESTION
from tests.agents.runtime.conftest import DISCLAIMER
from tests.conftest import client_for
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


def _url(execution_id: int) -> str:
    return reverse("execution-replay", args=[execution_id])


def _run_through_api(client, agent, **extra) -> dict:
    response = client.post(
        reverse("agent-execute", args=[agent.pk]), {"input": QUESTION, **extra}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_replay_runs_the_original_input_as_of_its_day_against_the_active_release(
    vat_agent, editor_client, second_release
):
    """The replay is a new test execution pinned to the active release, with the original's input and
    as_of, linked to it, and audited with the release's hash."""
    original = _run_through_api(editor_client, vat_agent, as_of="2024-01-31")
    response = editor_client.post(_url(original["id"]), {}, format="json")
    assert response.status_code == 201, response.json()
    replay = response.json()
    assert replay["id"] != original["id"]
    assert replay["replay_of"] == original["id"]
    # Every API run is a turn of a conversation; the replay runs on its own.
    assert original["conversation"] is not None and replay["conversation"] is None
    assert replay["is_test"] is True and replay["status"] == "completed", replay["error"]
    assert replay["input"] == QUESTION  # the real input, identifiers included
    assert replay["as_of"] == "2024-01-31"
    active = vat_agent.active_release
    assert (
        (replay["release"], replay["release_hash"])
        == (active.number, active.content_hash)
        == (1, active.content_hash)
    )
    assert replay["steps"], "the replay has its own trace"
    stored = Execution.objects.get(pk=replay["id"])
    assert stored.replay_of_id == original["id"] and stored.source == "api"
    event = AuditEvent.objects.get(action="execution.replay", object_id=str(replay["id"]))
    assert event.after["replay_of"] == original["id"]
    assert event.after["release_hash"] == active.content_hash and event.after["as_of"] == "2024-01-31"
    assert IBAN not in json.dumps(event.after)
    assert audit_verify_chain(vat_agent.organization) == []


def test_replay_against_a_chosen_release_runs_that_release(vat_agent, editor_client, second_release):
    """``release`` pins another release: release 2 (without the disclaimer) answers without it."""
    original = _run_through_api(editor_client, vat_agent)
    assert original["output"].rstrip().endswith(DISCLAIMER)
    response = editor_client.post(_url(original["id"]), {"release": 2}, format="json")
    assert response.status_code == 201, response.json()
    replay = response.json()
    assert replay["release"] == 2 and replay["release_hash"] == second_release.content_hash
    assert DISCLAIMER not in replay["output"]
    assert not any(step["name"].startswith("Disclaimer") for step in replay["steps"])


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"release": 99}, "release", 404),
        ({"release": 0}, "release", 400),
        ({"release": "two"}, "release", 400),
    ],
)
def test_a_release_the_agent_does_not_have_is_a_404_and_a_malformed_one_a_400(
    vat_agent, editor_client, payload, field, status
):
    """A release number the agent lacks names an object that is not there (404, like any unknown
    object named in a body); a number that cannot be a release is bad input (400)."""
    original = _run_through_api(editor_client, vat_agent)
    before = Execution.objects.count()
    assert_error(editor_client.post(_url(original["id"]), payload, format="json"), status, fields=[field])
    assert Execution.objects.count() == before


def test_an_agent_without_an_active_release_needs_a_release(make_agent, editor, editor_client):
    """A draft's test run replays only against a release named: without one, 409 saying so."""
    agent = make_agent(status="draft", name="Draft adviser")
    original = execute(agent, QUESTION, actor=editor, source="console", is_test=True)
    body = assert_error(editor_client.post(_url(original.pk), {}, format="json"), 409)
    assert "no active release" in body["message"]


def test_anonymous_and_viewers_cannot_replay(vat_agent, editor_client, viewer_client, api_client):
    original = _run_through_api(editor_client, vat_agent)
    before = Execution.objects.count()
    assert_error(api_client.post(_url(original["id"]), {}, format="json"), 401)
    assert_error(viewer_client.post(_url(original["id"]), {}, format="json"), 403)
    assert Execution.objects.count() == before


def test_another_organisations_execution_is_a_404(vat_agent, editor_client, other_org):
    original = _run_through_api(editor_client, vat_agent)
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert_error(client_for(stranger).post(_url(original["id"]), {}, format="json"), 404)
    key = APIKeyFactory(organization=other_org, scopes=["read", "write", "execute"])
    assert_error(client_for(key=key.plaintext).post(_url(original["id"]), {}, format="json"), 404)


def test_a_key_replays_only_its_own_runs_so_identifiers_never_leak_across(vat_agent, org, editor_client):
    """A write key that did not make the run would see its identifiers as the replay's requester:
    refused (403, nothing runs). The key that made it replays it, and sees its own values."""
    own = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    other = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    own_client, other_client = client_for(key=own.plaintext), client_for(key=other.plaintext)
    original = _run_through_api(own_client, vat_agent)
    # The other key reads the original masked ...
    seen = other_client.get(reverse("execution-detail", args=[original["id"]])).json()
    assert "3704 0044" not in json.dumps(seen) and "DE89" in seen["input"]
    before = Execution.objects.count()
    # ... and may not replay it: the replay would show it the values.
    body = assert_error(other_client.post(_url(original["id"]), {}, format="json"), 403)
    assert body["message"] == REPLAY_REFUSED
    assert Execution.objects.count() == before
    # Nor may a person's run be replayed by a key.
    person_run = _run_through_api(editor_client, vat_agent)
    assert_error(own_client.post(_url(person_run["id"]), {}, format="json"), 403)
    # The key that made the run replays it and sees what it typed.
    response = own_client.post(_url(original["id"]), {}, format="json")
    assert response.status_code == 201, response.json()
    replay = response.json()
    assert replay["input"] == QUESTION and replay["replay_of"] == original["id"]
    assert Execution.objects.get(pk=replay["id"]).actor_api_key_id == own.pk
    # The other key sees the replay masked, like the original.
    seen = other_client.get(reverse("execution-detail", args=[replay["id"]])).json()
    assert "3704 0044" not in json.dumps(seen)


def test_a_key_without_the_write_scope_cannot_replay(vat_agent, org):
    key = APIKeyFactory(organization=org, scopes=["read", "execute"])
    client = client_for(key=key.plaintext)
    original = _run_through_api(client, vat_agent)
    body = assert_error(client.post(_url(original["id"]), {}, format="json"), 403)
    assert "write" in body["message"]


def test_malformed_body_is_a_400(vat_agent, editor_client):
    original = _run_through_api(editor_client, vat_agent)
    response = editor_client.post(_url(original["id"]), "[1, 2]", content_type="application/json")
    assert_error(response, 400)


# --- The staff UI ---------------------------------------------------------------------------------


def test_the_execution_page_replays_and_compares(vat_agent, editor, second_release):
    """The execution's page offers Replay (release to choose) and evidence; replaying opens the
    comparison of original and replay in two columns."""
    original = execute(vat_agent, QUESTION, actor=editor, source="api")
    web = login(editor)
    page = web.get(reverse("admin:agents_execution_change", args=[original.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert reverse("admin:agents_execution_replay", args=[original.pk]) in html
    assert "Release 2 · " in html and "Download evidence" in html
    response = web.post(
        reverse("admin:agents_execution_replay", args=[original.pk]), {"release": second_release.pk}
    )
    replay = Execution.objects.get(replay_of=original)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:agents_execution_comparison", args=[replay.pk])
    assert replay.release == second_release and replay.is_test and replay.source == "console"
    comparison = web.get(response["Location"])
    html = comparison.content.decode()
    assert comparison.status_code == 200
    assert f"Original #{original.pk}" in html and f"Replay #{replay.pk}" in html
    assert f"release 1 · {vat_agent.active_release.content_hash}" in html
    assert f"release 2 · {second_release.content_hash}" in html
    assert "pg-compare-differs" in html and "Guardrail verdicts" in html
    # The replay's own page links back to the comparison.
    page = web.get(reverse("admin:agents_execution_change", args=[replay.pk])).content.decode()
    assert f"Compare with the original #{original.pk}" in page
    # Replaying is a POST: a GET of the replay URL runs nothing.
    assert web.get(reverse("admin:agents_execution_replay", args=[original.pk])).status_code == 405
    assert Execution.objects.filter(replay_of=original).count() == 1


def test_replay_refusals_in_the_staff_ui(make_agent, vat_agent, editor, viewer, org, other_org):
    original = execute(vat_agent, QUESTION, actor=editor, source="api")
    url = reverse("admin:agents_execution_replay", args=[original.pk])
    # A viewer gets no form and cannot post one.
    viewer_web = login(viewer)
    page = viewer_web.get(reverse("admin:agents_execution_change", args=[original.pk])).content.decode()
    assert url not in page and "Download evidence" in page
    assert viewer_web.post(url, {}).status_code == 403
    # Another organisation's execution: 404.
    stranger = UserFactory(is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert login(stranger).post(url, {}).status_code == 404
    # An agent without an active release: a message, nothing runs.
    draft = make_agent(status="draft", name="Draft adviser")
    run = execute(draft, QUESTION, actor=editor, source="console", is_test=True)
    web = login(editor)
    response = web.post(reverse("admin:agents_execution_replay", args=[run.pk]), {}, follow=True)
    assert "no active release" in response.content.decode()
    assert not Execution.objects.filter(replay_of=run).exists()
    # A release of another agent is not a choice.
    response = web.post(url, {"release": draft.pk + 1000}, follow=True)
    assert "Choose one of this agent" in response.content.decode()
    # The comparison of a run that is no replay sends back to its page.
    response = web.get(reverse("admin:agents_execution_comparison", args=[original.pk]))
    assert response.status_code == 302
