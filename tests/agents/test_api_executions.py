"""``/api/v1/executions/``: list (filters, cursor pages), retrieve with the trace, feedback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Execution, Feedback, LearningExample
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    PersonaFactory,
)
from tests.support.api import ReadOnlyAPIResourceTests, assert_error, results

pytestmark = pytest.mark.django_db


class TestExecutionAPI(ReadOnlyAPIResourceTests):
    model = Execution
    url = "/api/v1/executions/"

    def make_object(self, organization, parent=None):
        return ExecutionFactory(agent=AgentFactory(organization=organization))

    def make_list_objects(self, organization, parent, count):
        agent = AgentFactory(organization=organization)
        persona = PersonaFactory(agent=agent)
        executions = []
        for _ in range(count):
            execution = ExecutionFactory(agent=agent, persona=persona)
            ExecutionStepFactory(execution=execution, ordinal=0)
            executions.append(execution)
        return executions


def test_retrieve_has_steps_in_order(org, viewer_client, django_assert_max_num_queries):
    execution = ExecutionFactory(agent=AgentFactory(organization=org))
    for ordinal, kind in [(1, "model_call"), (0, "guardrail"), (2, "tool_call")]:
        ExecutionStepFactory(execution=execution, ordinal=ordinal, kind=kind)
    with django_assert_max_num_queries(8):
        body = viewer_client.get(f"/api/v1/executions/{execution.pk}/").json()
    assert [s["kind"] for s in body["steps"]] == ["guardrail", "model_call", "tool_call"]


def test_filters(org, viewer_client):
    agent, other_agent = AgentFactory(organization=org), AgentFactory(organization=org)
    done = ExecutionFactory(agent=agent, status="completed", source="api")
    blocked = ExecutionFactory(agent=agent, status="blocked", source="console")
    old = ExecutionFactory(agent=other_agent, status="failed", source="api")
    Execution.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    def ids(**params):
        response = viewer_client.get("/api/v1/executions/", params)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in results(response)}

    assert ids(agent=agent.pk) == {done.pk, blocked.pk}
    assert ids(status="blocked") == {blocked.pk}
    assert ids(source="api") == {done.pk, old.pk}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(created_after=since) == {done.pk, blocked.pk}
    assert ids(created_before=since) == {old.pk}
    assert_error(viewer_client.get("/api/v1/executions/", {"created_after": "yesterday"}), 400)


def test_cursor_pages_do_not_repeat_rows(org, viewer_client):
    agent = AgentFactory(organization=org)
    made = {ExecutionFactory(agent=agent).pk for _ in range(5)}
    seen, url = [], "/api/v1/executions/?page_size=2"
    while url:
        body = viewer_client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) and set(seen) == made


def test_feedback_with_correction_proposes_a_learning_example(org, viewer_client):
    execution = ExecutionFactory(agent=AgentFactory(organization=org))
    response = viewer_client.post(
        f"/api/v1/executions/{execution.pk}/feedback/",
        {
            "rating": -1,
            "comment": "Wrong place of supply.",
            "correction": "The customer accounts for the VAT.",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    example = LearningExample.objects.get(pk=response.json()["learning_example"])
    assert example.status == "proposed" and example.output == "The customer accounts for the VAT."
    assert example.input == execution.input and example.agent_id == execution.agent_id


def test_feedback_validation_and_scope(org, other_org):
    from tests.conftest import client_for

    execution = ExecutionFactory(agent=AgentFactory(organization=org))
    url = f"/api/v1/executions/{execution.pk}/feedback/"
    key_client = client_for(key=APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext)
    assert key_client.post(url, {"rating": 1}, format="json").status_code == 201
    assert Feedback.objects.get(execution=execution).api_key is not None
    assert_error(key_client.post(url, {"rating": 5}, format="json"), 400, fields=("rating",))
    assert_error(
        key_client.post(url, {"rating": 1, "correction": "x"}, format="json"), 400, fields=("correction",)
    )
    read_only = client_for(key=APIKeyFactory(organization=org, scopes=["read"]).plaintext)
    assert_error(read_only.post(url, {"rating": 1}, format="json"), 403)
    foreign = client_for(key=APIKeyFactory(organization=other_org, scopes=["read", "execute"]).plaintext)
    assert_error(foreign.post(url, {"rating": 1}, format="json"), 404)


def test_executions_are_read_only(org, editor_client):
    execution = ExecutionFactory(agent=AgentFactory(organization=org))
    assert editor_client.delete(f"/api/v1/executions/{execution.pk}/").status_code == 405
    assert editor_client.post("/api/v1/executions/", {"input": "x"}, format="json").status_code in (403, 405)
