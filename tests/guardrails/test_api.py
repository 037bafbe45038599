"""``/api/v1/guardrails/``: CRUD through the generic tests, config validation and the check action."""

from __future__ import annotations

import pytest

from guardrails.models import Guardrail
from tests.factories import AgentFactory, AgentGuardrailFactory, GuardrailFactory
from tests.support.api import APIResourceTests, assert_error

pytestmark = pytest.mark.django_db


class TestGuardrailAPI(APIResourceTests):
    model = Guardrail
    factory = GuardrailFactory
    url = "/api/v1/guardrails/"
    create_data = {"name": "No guarantees", "kind": "keywords", "config": {"keywords": ["guaranteed refund"]}}
    update_data = {"description": "Blocks promises of refunds.", "enabled": False}
    invalid_data = {"name": "", "kind": "nonsense"}


def test_invalid_config_400_names_config(editor_client):
    """A configuration the kind does not accept is refused with a message on ``config``."""
    response = editor_client.post(
        "/api/v1/guardrails/",
        {"name": "Bad", "kind": "keywords", "config": {"keywords": "not a list"}},
        format="json",
    )
    assert_error(response, 400, fields=("config",))
    response = editor_client.post(
        "/api/v1/guardrails/", {"name": "Bad", "kind": "keywords", "config": [1]}, format="json"
    )
    assert_error(response, 400, fields=("config",))


def test_kind_defaults_for_action_and_stages(editor_client):
    """Left out, the action and stages come from the kind (PII redacts on the input)."""
    response = editor_client.post("/api/v1/guardrails/", {"name": "PII", "kind": "pii"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["action"] == "redact" and body["applies_to_input"] is True


def test_check_blocks_and_reports(org, editor_client, viewer_client):
    """``check`` returns the engine's verdict; it needs the editor role or the execute scope."""
    guardrail = GuardrailFactory(organization=org, kind="keywords", config={"keywords": ["forbidden"]})
    url = f"/api/v1/guardrails/{guardrail.pk}/check/"
    response = editor_client.post(url, {"text": "This is forbidden.", "stage": "input"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["blocked"] is True and body["blocked_by"]["guardrail_id"] == guardrail.pk
    assert body["text"] is None
    response = editor_client.post(url, {"text": "All fine.", "stage": "input"}, format="json")
    assert response.json()["blocked"] is False and response.json()["text"] == "All fine."
    assert_error(
        editor_client.post(url, {"text": "x", "stage": "nowhere"}, format="json"), 400, fields=("stage",)
    )
    assert_error(viewer_client.post(url, {"text": "x"}, format="json"), 403)


def test_check_redaction_never_returns_the_original(org, editor_client):
    guardrail = GuardrailFactory(organization=org, kind="pii", action="redact", config={})
    iban = "DE89 3704 0044 0532 0130 00"
    response = editor_client.post(
        f"/api/v1/guardrails/{guardrail.pk}/check/",
        {"text": f"My IBAN is {iban}.", "stage": "input"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert iban not in response.content.decode()
    assert "[IBAN_1]" in response.json()["text"]


def test_check_other_organisation_404(other_org, editor_client):
    guardrail = GuardrailFactory(organization=other_org)
    assert_error(
        editor_client.post(f"/api/v1/guardrails/{guardrail.pk}/check/", {"text": "x"}, format="json"), 404
    )


def test_delete_assigned_guardrail_409(org, editor_client):
    assignment = AgentGuardrailFactory(agent=AgentFactory(organization=org))
    assert_error(editor_client.delete(f"/api/v1/guardrails/{assignment.guardrail_id}/"), 409)
