"""``/api/v1/learning-examples/``: CRUD, approve and reject, scoped to the caller's agents."""

from __future__ import annotations

import pytest

from agents.models import LearningExample
from tests.factories import AgentFactory, LearningExampleFactory
from tests.support.api import APIResourceTests, assert_error, results

pytestmark = pytest.mark.django_db


class TestLearningExampleAPI(APIResourceTests):
    model = LearningExample
    url = "/api/v1/learning-examples/"
    update_data = {"output": "The French customer accounts for the VAT (reverse charge)."}
    invalid_data = {"input": "", "agent": 999999}

    def make_object(self, organization, parent=None):
        return LearningExampleFactory(agent=AgentFactory(organization=organization))

    def make_list_objects(self, organization, parent, count):
        agent = AgentFactory(organization=organization)
        return [LearningExampleFactory(agent=agent) for _ in range(count)]

    def get_create_data(self, parent):
        agent = AgentFactory(organization=self.org)
        return {
            "agent": agent.pk,
            "input": "Who pays the VAT?",
            "output": "The customer, under reverse charge.",
        }


def test_another_organisations_agent_is_refused(other_org, editor_client):
    agent = AgentFactory(organization=other_org)
    response = editor_client.post(
        "/api/v1/learning-examples/", {"agent": agent.pk, "input": "q", "output": "a"}, format="json"
    )
    assert_error(response, 404, fields=("agent",))


def test_approve_reject_and_edit_sends_back_to_review(org, editor_client, viewer_client):
    example = LearningExampleFactory(agent=AgentFactory(organization=org))
    url = f"/api/v1/learning-examples/{example.pk}/"
    assert_error(viewer_client.post(f"{url}approve/"), 403)
    assert editor_client.post(f"{url}approve/").json()["status"] == "approved"
    assert (
        results(editor_client.get("/api/v1/learning-examples/", {"status": "approved"}))[0]["id"]
        == example.pk
    )
    assert editor_client.patch(url, {"output": "Better"}, format="json").json()["status"] == "proposed"
    assert editor_client.post(f"{url}reject/").json()["status"] == "rejected"


def test_example_cannot_move_to_another_agent(org, editor_client):
    example = LearningExampleFactory(agent=AgentFactory(organization=org))
    other = AgentFactory(organization=org)
    response = editor_client.patch(
        f"/api/v1/learning-examples/{example.pk}/", {"agent": other.pk}, format="json"
    )
    assert_error(response, 400, fields=("agent",))
