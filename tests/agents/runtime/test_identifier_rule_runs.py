"""The identifier rule (``agents.privacy``) over what a real run records: values only the agent's own
PII guardrails find (an Australian telephone number, with ``phone_regions: ["AU"]``), whatever their
action, are masked in lists, in the audit log and in a conversation's title; an error quoting a value
is masked in the audit event. A local OpenAI-compatible server stands in for the provider."""

from __future__ import annotations

import json

import pytest

from agents.models import Conversation
from agents.runtime import execute
from agents.runtime.conversations import NEW
from guardrails.masking import mask_text
from prisma_glow.audit.models import AuditEvent
from tests.agents.runtime.conftest import guardrail
from tests.agents.runtime.test_openai_provider import completion, remote  # noqa: F401
from tests.conftest import client_for
from tests.factories import MembershipFactory, release_now
from tests.support.api import results

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
#: An Australian mobile number: the default detectors (no AU region) do not find it.
AU_PHONE = "0412 345 678"
QUESTION = f"Client Smith {AU_PHONE} asks about GST"


def _audit(organization, **filters) -> str:
    events = AuditEvent.objects.filter(organization=organization, **filters)
    return json.dumps(list(events.values("object_repr", "before", "after")), ensure_ascii=False)


@pytest.mark.parametrize("action", ["block", "warn", "redact"])
def test_a_value_only_the_agents_guardrail_finds_is_masked_in_lists_whatever_its_action(
    remote,  # noqa: F811 (the imported fixture)
    action,
    editor,
):
    agent, model = remote(completion("ok"))
    guardrail(agent, 0, name="PII", kind="pii", action=action, config={"phone_regions": ["AU"]})
    release_now(agent)
    execution = execute(agent, QUESTION, source="api", actor=editor)
    assert execution.status == ("blocked" if action == "block" else "completed"), execution.error
    viewer = client_for(MembershipFactory(organization=agent.organization, role="viewer").user)
    listed = results(viewer.get("/api/v1/executions/"))[0]
    assert AU_PHONE not in listed["input"] and "04 •••• 78" in listed["input"]
    detail = viewer.get(f"/api/v1/executions/{execution.pk}/").json()
    assert AU_PHONE not in json.dumps(detail, ensure_ascii=False)
    # The requester still reads the input as typed, and the placeholder-less entry restores nothing.
    own = client_for(editor).get(f"/api/v1/executions/{execution.pk}/").json()
    assert own["input"] == QUESTION
    if action != "redact":
        assert json.loads(execution.redactions) == {"found:PHONE:1": AU_PHONE}
    assert AU_PHONE not in _audit(agent.organization)


def test_a_blocked_reason_quoting_a_value_is_masked_in_the_audit_event(remote):  # noqa: F811 (the imported fixture)
    """A JSON-schema check that blocks quotes the offending value (restored from its placeholder): the
    execution keeps the reason for those who may read it; the append-only audit event masks it."""
    agent, model = remote(completion('{"iban": "[IBAN_1]", "valid": "yes"}'))
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    guardrail(
        agent,
        1,
        name="Schema",
        kind="json_schema",
        action="block",
        applies_to_input=False,
        applies_to_output=True,
        config={"schema": {"type": "object", "properties": {"iban": {"type": "integer"}}}},
    )
    release_now(agent)
    execution = execute(agent, f"Is {IBAN} valid? Answer in JSON.", source="api")
    assert execution.status == "blocked"
    assert IBAN not in json.dumps(model.bodies)
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert event.after["error"], execution.error
    assert IBAN not in _audit(agent.organization)


@pytest.mark.parametrize("action", ["warn", None])
def test_a_tool_argument_rejection_quoting_a_value_is_masked_in_the_audit_event(remote, action):  # noqa: F811 (the imported fixture)
    args = json.dumps({"value": IBAN + " account of Meyer GmbH, Munich branch, opened 2019"})
    agent, model = remote(completion(None, tool_calls=[("vat-iban-validator", args)]), completion("ok"))
    if action:
        guardrail(agent, 0, name="PII", kind="pii", action=action, config={})
    execution = execute(agent, f"Is {IBAN} valid?", source="api")
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(execution.pk))
    assert IBAN not in _audit(agent.organization, action="agent.execute"), event.after
    if execution.error:
        assert event.after["error"] == mask_text(execution.error, known=[IBAN])


@pytest.mark.parametrize("action", ["block", "warn", "redact"])
def test_a_conversations_title_masks_what_the_agents_guardrail_finds(remote, action, editor):  # noqa: F811 (the imported fixture)
    """The title follows the one masking rule, with what the agent's own PII configuration finds."""
    agent, model = remote(completion("ok"))
    guardrail(agent, 0, name="PII", kind="pii", action=action, config={"phone_regions": ["AU"]})
    release_now(agent)
    execution = execute(agent, QUESTION, source="api", actor=editor, conversation=NEW)
    conversation = Conversation.objects.get(pk=execution.conversation_id)
    assert conversation.title == "Client Smith 04 •••• 78 asks about GST"
    viewer = client_for(MembershipFactory(organization=agent.organization, role="viewer").user)
    assert AU_PHONE not in json.dumps(results(viewer.get("/api/v1/conversations/")), ensure_ascii=False)
    assert AU_PHONE not in _audit(agent.organization)
