"""Conventions every domain model keeps (STYLE.md §6): a docstring, a readable ``__str__``, and a
database constraint behind every enumeration, so a bad value is refused whichever way it is written."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

DOMAIN_APPS = ("tenancy", "audit", "agents", "personas", "tools", "guardrails", "knowledge", "evaluations")
MODELS = [m for label in DOMAIN_APPS for m in apps.get_app_config(label).get_models()]


def _name(model) -> str:
    return model._meta.label


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_model_has_a_docstring_and_str(model):
    """Django writes a ``Model(field, …)`` docstring when none is given; every model says what it is."""
    assert model.__doc__ and not model.__doc__.startswith(f"{model.__name__}("), "no docstring"
    assert model.__str__ is not models.Model.__str__, "no __str__"


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_every_enumeration_is_constrained_in_the_database(model):
    """A field with choices has a CheckConstraint on its values (``<field>__in``)."""
    constrained = {
        child[0].removesuffix("__in")
        for constraint in model._meta.constraints
        if isinstance(constraint, models.CheckConstraint)
        for node in constraint.condition.flatten()
        if isinstance(node, models.Q)
        for child in node.children
        if isinstance(child, tuple) and child[0].endswith("__in")
    }
    choice_fields = {f.name for f in model._meta.concrete_fields if f.choices}
    assert choice_fields <= constrained, f"unconstrained choices: {sorted(choice_fields - constrained)}"
