"""``Guardrail.clean()`` and the audited services."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents.models import AgentGuardrail
from guardrails.models import Guardrail
from guardrails.services import guardrail_create, guardrail_delete, guardrail_update
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import ConflictError
from tests.factories import AgentFactory, GuardrailFactory

pytestmark = pytest.mark.django_db


def test_clean_validates_config_action_and_stages(org):
    guardrail = Guardrail(
        organization=org, name="Notice", kind="disclaimer", action="block", config={}, applies_to_input=True
    )
    with pytest.raises(ValidationError) as error:
        guardrail.full_clean()
    errors = error.value.message_dict
    assert "cannot use the action 'block'" in errors["action"][0]
    assert "'text' (the notice to add) is required." in errors["config"]
    assert "runs only on the output, not on the input" in errors["__all__"][0]


def test_create_defaults_action_and_stages_by_kind_and_is_audited(org, owner):
    notice = guardrail_create(
        organization=org, actor=owner, name="Notice", kind="disclaimer", config={"text": "N."}
    )
    assert (notice.action, notice.applies_to_input, notice.applies_to_output) == ("append", False, True)
    injection = guardrail_create(organization=org, actor=owner, name="Injection", kind="prompt_injection")
    assert (injection.applies_to_input, injection.applies_to_retrieval) == (True, True)
    pii = guardrail_create(organization=org, actor=owner, name="PII", kind="pii")
    assert pii.action == "redact"
    event = AuditEvent.objects.filter(action="guardrail.create", object_id=str(notice.pk)).get()
    assert event.actor_user == owner
    assert event.after["config"] == {"text": "N."}


def test_create_refuses_an_invalid_regex(org, owner):
    with pytest.raises(ValidationError) as error:
        guardrail_create(
            organization=org, actor=owner, name="Codes", kind="regex", config={"patterns": ["(a+)+$"]}
        )
    assert "catastrophic backtracking" in error.value.message_dict["config"][0]
    assert not Guardrail.objects.filter(name="Codes").exists()


def test_update_validates_and_audits_before_and_after(org, owner):
    guardrail = GuardrailFactory(organization=org, config={"keywords": ["one"]})
    guardrail_update(guardrail=guardrail, actor=owner, config={"keywords": ["one", "two"]})
    event = AuditEvent.objects.filter(action="guardrail.update").get()
    assert event.before["config"] == {"keywords": ["one"]}
    assert event.after["config"] == {"keywords": ["one", "two"]}
    with pytest.raises(ValidationError):
        guardrail_update(guardrail=guardrail, actor=owner, config={"keywords": []})
    with pytest.raises(TypeError):
        guardrail_update(guardrail=guardrail, actor=owner, organization=None)


def test_delete_is_audited_and_refused_while_assigned(org, owner):
    guardrail = GuardrailFactory(organization=org)
    AgentGuardrail.objects.create(
        agent=AgentFactory(organization=org, name="VAT adviser"), guardrail=guardrail
    )
    with pytest.raises(ConflictError, match="assigned to VAT adviser"):
        guardrail_delete(guardrail=guardrail, actor=owner)
    AgentGuardrail.objects.filter(guardrail=guardrail).delete()
    pk = guardrail.pk
    guardrail_delete(guardrail=guardrail, actor=owner)
    assert not Guardrail.objects.filter(pk=pk).exists()
    assert AuditEvent.objects.filter(action="guardrail.delete", object_id=str(pk)).exists()
