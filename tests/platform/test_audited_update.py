"""``audited_update``: the one sequence every update service runs (snapshot, set, validate, save,
audit with before and after), in the caller's transaction."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from guardrails.models import Guardrail
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audited_update
from tests.factories import GuardrailFactory

pytestmark = pytest.mark.django_db


def _update(guardrail, actor, **kwargs):
    kwargs.setdefault("action", "guardrail.update")
    return audited_update(guardrail, organization=guardrail.organization, actor=actor, **kwargs)


def test_sets_validates_saves_and_records_before_and_after(org, owner):
    guardrail = GuardrailFactory(organization=org, name="Old name")
    result = _update(guardrail, owner, fields={"name": "New name"})
    assert result is guardrail
    assert Guardrail.objects.get(pk=guardrail.pk).name == "New name"
    event = AuditEvent.objects.get(action="guardrail.update")
    assert event.before["name"] == "Old name" and event.after["name"] == "New name"
    assert event.object_id == str(guardrail.pk) and event.actor_user == owner


def test_only_the_changed_columns_are_written(org, owner):
    """A column another writer changed meanwhile is not overwritten with the stale copy's value."""
    guardrail = GuardrailFactory(organization=org, description="Original")
    Guardrail.objects.filter(pk=guardrail.pk).update(description="Changed elsewhere")
    _update(guardrail, owner, fields={"name": "Renamed"})
    stored = Guardrail.objects.get(pk=guardrail.pk)
    assert (stored.name, stored.description) == ("Renamed", "Changed elsewhere")
    assert stored.updated_at > guardrail.created_at  # auto_now columns are saved too


def test_invalid_values_save_and_record_nothing(org, owner):
    guardrail = GuardrailFactory(organization=org, name="Kept")
    with pytest.raises(ValidationError) as raised:
        _update(guardrail, owner, fields={"name": ""})
    assert "name" in raised.value.message_dict
    assert Guardrail.objects.get(pk=guardrail.pk).name == "Kept"
    assert not AuditEvent.objects.filter(action="guardrail.update").exists()


def test_the_callers_validation_replaces_full_clean(org, owner):
    guardrail = GuardrailFactory(organization=org)

    def validate(instance):
        instance.description = instance.name.upper()  # a derived value is saved with the rest

    _update(guardrail, owner, fields={"name": "derived"}, validate=validate)
    assert Guardrail.objects.get(pk=guardrail.pk).description == "DERIVED"
    assert AuditEvent.objects.get(action="guardrail.update").after["description"] == "DERIVED"


def test_a_save_without_changes_is_recorded_too(org, owner):
    """The row is saved (its ``updated_at`` moves) and the save is on record, as before the helper."""
    guardrail = GuardrailFactory(organization=org, name="Same")
    _update(guardrail, owner, fields={"name": "Same"})
    event = AuditEvent.objects.get(action="guardrail.update")
    assert event.before["name"] == event.after["name"] == "Same"


def test_extra_before_and_after_values_are_merged(org, owner):
    guardrail = GuardrailFactory(organization=org)
    _update(guardrail, owner, fields={"enabled": False}, before_extra={"why": "test"}, after_extra={"n": 1})
    event = AuditEvent.objects.get(action="guardrail.update")
    assert event.before["why"] == "test" and event.before["enabled"] is True
    assert event.after["n"] == 1 and event.after["enabled"] is False


def test_runs_in_the_callers_transaction(org, owner):
    """The change and its event commit or roll back with the caller's transaction."""
    guardrail = GuardrailFactory(organization=org, name="Before")
    with pytest.raises(RuntimeError), transaction.atomic():
        _update(guardrail, owner, fields={"name": "After"})
        raise RuntimeError("the caller fails later")
    assert Guardrail.objects.get(pk=guardrail.pk).name == "Before"
    assert not AuditEvent.objects.filter(action="guardrail.update").exists()
