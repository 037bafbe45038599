"""Guardrails: names per organisation, kinds, actions, stages, per-kind configuration."""

from __future__ import annotations

import pytest

from guardrails.models import Guardrail
from tests.factories import GuardrailFactory
from tests.support.models import assert_conflict, assert_db_rejects, assert_invalid

pytestmark = pytest.mark.django_db


def _guardrail(org, **values):
    return Guardrail(
        organization=org,
        **{"name": "Banned words", "kind": "keywords", "config": {"keywords": ["x"]}, **values},
    )


def test_name_is_unique_per_organization(org, other_org):
    """One organisation cannot have two guardrails with one name; another organisation can."""
    GuardrailFactory(organization=org, name="Banned words")
    assert_db_rejects(lambda: _guardrail(org).save())
    assert_conflict(
        _guardrail(org), "A guardrail with this name already exists in this organisation.", field="name"
    )
    _guardrail(other_org).full_clean()


@pytest.mark.parametrize(("field", "value"), [("kind", "sentiment"), ("action", "escalate")])
def test_kind_and_action_must_be_known(org, field, value):
    """Kinds and actions come from fixed lists."""
    assert_db_rejects(lambda: _guardrail(org, **{field: value}).save())
    assert_invalid(_guardrail(org, **{field: value}), f"Value '{value}' is not a valid choice.", field=field)


def test_at_least_one_stage(org):
    """A guardrail that applies to no stage is refused."""
    values = {"applies_to_input": False, "applies_to_retrieval": False, "applies_to_output": False}
    assert_db_rejects(lambda: _guardrail(org, **values).save())
    assert_invalid(_guardrail(org, **values), "Choose at least one stage: input, retrieval or output.")


@pytest.mark.parametrize("config", [[], "keywords", 3])
def test_config_must_be_an_object(org, config):
    """The configuration is a JSON object."""
    assert_invalid(_guardrail(org, config=config), "The configuration must be a JSON object.", field="config")


def test_applies_to_reports_each_stage(org):
    """applies_to() reflects the three stage switches."""
    guardrail = _guardrail(org, applies_to_input=False, applies_to_retrieval=True, applies_to_output=True)
    assert [guardrail.applies_to(s) for s in ("input", "retrieval", "output")] == [False, True, True]
    with pytest.raises(ValueError):
        guardrail.applies_to("tool")


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"kind": "pii", "action": "redact", "config": {"entities": ["dna"]}},
            "config",
            "Unknown entity: dna",
        ),
        ({"kind": "blocked_topics", "config": {}}, "config", "'topics' must be a non-empty list"),
        ({"kind": "keywords", "config": {"keywords": ["x"], "colour": "red"}}, "config", "colour"),
        (
            {
                "kind": "disclaimer",
                "action": "block",
                "config": {"text": "Not advice."},
                "applies_to_output": True,
            },
            "action",
            "cannot use the action 'block'",
        ),
    ],
)
def test_config_and_action_are_validated_for_the_kind(org, values, field, message):
    """full_clean runs the kind's own validation: unknown settings, missing lists, unsuitable actions."""
    assert_invalid(_guardrail(org, **values), message, field=field)


def test_a_valid_configuration_passes(org):
    """A well-formed configuration of each common kind is accepted."""
    _guardrail(org, kind="pii", action="redact", config={"entities": ["iban", "email"]}).full_clean()
    _guardrail(
        org,
        name="Topics",
        kind="blocked_topics",
        config={"topics": [{"name": "Evasion", "terms": ["evade tax"]}]},
    ).full_clean()


def test_output_only_kinds_cannot_run_on_the_input(org):
    """A disclaimer or a citation check makes sense only on the answer; on the input it is refused."""
    disclaimer = _guardrail(org, kind="disclaimer", action="append", config={"text": "Not advice."})
    assert_invalid(disclaimer, "A Disclaimer guardrail runs only on the output, not on the input.")
    disclaimer.applies_to_input, disclaimer.applies_to_output = False, True
    disclaimer.full_clean()
