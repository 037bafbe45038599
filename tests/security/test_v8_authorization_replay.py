"""ASVS 5.0 level 2, chapter V8 (Authorization), for replay and the evidence pack (issue 17): who may run
a past execution's input again, and that no organisation reaches another's executions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Execution
from tests.agents.runtime.conftest import make_agent, vat_agent, vat_kb  # noqa: F401 (fixtures)
from tests.conftest import client_for
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

QUESTION = "Is the reverse charge relevant for a payment from DE89 3704 0044 0532 0130 00?"


def _run(client, agent) -> int:
    response = client.post(reverse("agent-execute", args=[agent.pk]), {"input": QUESTION}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _replay(client, execution_id):
    return client.post(reverse("execution-replay", args=[execution_id]), {}, format="json")


def test_v8_2_1_only_editors_and_write_keys_replay(vat_agent, org, viewer, editor):  # noqa: F811
    """ASVS 5.0 V8.2.1: replaying (``execution.replay``) needs the editor role or a key's ``write``
    scope: a viewer and a key without ``write`` get 403 and nothing runs; an editor replays."""
    execute_key = APIKeyFactory(organization=org, scopes=["read", "execute"])
    own = _run(client_for(key=execute_key.plaintext), vat_agent)
    before = Execution.objects.count()
    assert_error(_replay(client_for(viewer), own), 403)
    assert_error(_replay(client_for(key=execute_key.plaintext), own), 403)
    assert Execution.objects.count() == before
    assert _replay(client_for(editor), own).status_code == 201


def test_v8_2_2_a_key_replays_only_the_runs_it_made(vat_agent, org, editor):  # noqa: F811
    """ASVS 5.0 V8.2.2: data-level access — a write key may not replay another requester's run (the
    replay would show it that run's client identifiers as its own): 403, nothing runs; its own run it
    may replay."""
    mine = APIKeyFactory(organization=org, scopes=["read", "write", "execute"])
    theirs = _run(client_for(editor), vat_agent)
    own = _run(client_for(key=mine.plaintext), vat_agent)
    before = Execution.objects.count()
    assert_error(_replay(client_for(key=mine.plaintext), theirs), 403)
    assert Execution.objects.count() == before
    assert _replay(client_for(key=mine.plaintext), own).status_code == 201


def test_v8_4_1_another_organisations_execution_is_a_404_to_replay_and_to_evidence(
    vat_agent,  # noqa: F811 (the fixture imported above)
    editor,
    other_org,
):
    """ASVS 5.0 V8.4.1: cross-tenant — another organisation's owner and write key get 404 on replay and
    on the evidence pack (JSON and HTML), and nothing runs."""
    execution_id = _run(client_for(editor), vat_agent)
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    key = APIKeyFactory(organization=other_org, scopes=["read", "write", "execute", "admin"])
    before = Execution.objects.count()
    for client in (client_for(stranger), client_for(key=key.plaintext)):
        assert_error(_replay(client, execution_id), 404)
        assert_error(client.get(reverse("execution-evidence", args=[execution_id])), 404)
        assert_error(client.get(reverse("execution-evidence", args=[execution_id]) + "?format=html"), 404)
    assert Execution.objects.count() == before
