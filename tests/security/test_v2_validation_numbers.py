"""Numbers are numbers and decimals are strings, as the schema says (``prisma_glow.api.strict``):
every writable integer or number refuses JSON ``true`` / ``false``, which DRF's ``FloatField`` read as
``1.0`` / ``0.0``; every writable decimal (a string with a pattern in the schema) refuses a JSON
number, which a binary float cannot carry exactly. Schemathesis found ``"min_score": false`` and
``"temperature": 0`` accepted with a 201.

ASVS 5.0 V2.2.1: input is validated against what the schema allows (positive validation), not
coerced from whatever the client sent."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from evaluations.models import Requirement
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    BudgetFactory,
    KnowledgeBaseFactory,
    LearningExampleFactory,
)
from tests.security.test_v2_validation_booleans import WRITE_METHODS, url_for
from tests.security.test_v2_validation_booleans import world as booleans_world  # noqa: F401 (fixture)
from tests.support.api import assert_error

MESSAGE = "Must be a number, not true or false."
DECIMAL_MESSAGE = 'Give the decimal as a string, e.g. "0.20": a JSON number can lose precision.'


@pytest.fixture
def world(booleans_world, org):  # noqa: F811 (the imported fixture, requested by name)
    """The booleans' world, plus the objects whose numbers and decimals only (agents, budgets…)."""
    agent = booleans_world["agent"]
    other = AgentFactory(organization=org)
    return {
        **booleans_world,
        "agents/{id}": agent.pk,
        "budgets/{id}": BudgetFactory(organization=org).pk,
        "knowledge-bases/{id}": KnowledgeBaseFactory(organization=org).pk,
        "learning-examples/{id}": LearningExampleFactory(agent=agent).pk,
        "api-keys/{id}": APIKeyFactory(organization=org).pk,
        "executions/{id}": booleans_world["execution"].pk,
        "evaluation-suites/{id}": booleans_world["suite"].pk,
        "evaluation-requirements/{id}": Requirement.objects.create(
            organization=org, agent=other, suite=booleans_world["suite"], threshold="0.80"
        ).pk,
    }


def writable_fields(client, wanted) -> list[tuple[str, str, str]]:
    """(method, path, field) for every writable property of every request body in the schema for
    which ``wanted(spec)`` holds."""
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    components = schema["components"]["schemas"]
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in WRITE_METHODS or "requestBody" not in operation:
                continue
            for content in operation["requestBody"]["content"].values():
                ref = content["schema"].get("$ref", "")
                properties = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
                for field, spec in properties.items():
                    if wanted(spec) and not spec.get("readOnly"):
                        found.append((method, path, field))
    return sorted(set(found))


def writable_numbers(client) -> list[tuple[str, str, str]]:
    return writable_fields(client, lambda spec: spec.get("type") in ("integer", "number"))


def writable_decimals(client) -> list[tuple[str, str, str]]:
    return writable_fields(client, lambda spec: spec.get("format") == "decimal")


def test_schema_declares_the_numbers_schemathesis_found(world):
    """ASVS 5.0 V2.2.1: the parametrised test below reads the schema; it has something to check."""
    fields = {(path, field) for _, path, field in writable_numbers(world["client"])}
    assert ("/api/v1/agents/{agent_pk}/knowledge/", "min_score") in fields
    assert ("/api/v1/knowledge-bases/search/", "min_score") in fields
    assert len(fields) >= 20
    decimals = {(path, field) for _, path, field in writable_decimals(world["client"])}
    assert ("/api/v1/agents/{agent_pk}/personas/", "temperature") in decimals
    assert ("/api/v1/budgets/", "limit") in decimals


@pytest.mark.parametrize("bad", [True, False])
def test_every_writable_number_refuses_booleans(world, bad):
    """ASVS 5.0 V2.2.1: every writable integer or number of the schema refuses a JSON boolean."""
    client = world["client"]
    failures = []
    for method, path, field in writable_numbers(client):
        response = getattr(client, method)(url_for(world, path), {field: bad}, format="json")
        body = response.json()
        # Relations (an agent, a suite…) keep DRF's "Incorrect type. Expected pk value, received bool."
        if response.status_code != 400 or not body.get("errors", {}).get(field):
            failures.append((method, path, field, response.status_code, body))
    assert failures == []


@pytest.mark.parametrize("bad", [0, 1, 0.5, 12])
def test_every_writable_decimal_refuses_json_numbers(world, bad):
    """ASVS 5.0 V2.2.1: every writable decimal of the schema (a string) refuses a JSON number."""
    client = world["client"]
    failures = []
    for method, path, field in writable_decimals(client):
        response = getattr(client, method)(url_for(world, path), {field: bad}, format="json")
        body = response.json()
        if response.status_code != 400 or body.get("errors", {}).get(field) != [DECIMAL_MESSAGE]:
            failures.append((method, path, field, response.status_code, body))
    assert failures == []


def test_a_decimal_given_as_a_string_is_taken(world):
    """ASVS 5.0 V2.2.1: the same value as a string, as the schema says, is accepted."""
    agent, version = world["agent"].pk, world["agents/{agent_pk}/personas/{version}"]
    client = world["client"]
    response = client.patch(f"/api/v1/agents/{agent}/personas/{version}/", {"temperature": 0}, format="json")
    assert assert_error(response, 400, fields=["temperature"])["errors"]["temperature"] == [DECIMAL_MESSAGE]
    response = client.patch(
        f"/api/v1/agents/{agent}/personas/{version}/", {"temperature": "0"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["temperature"] == "0.00"


def test_refusal_is_the_documented_error_body(world):
    """ASVS 5.0 V2.2.1: the refusal is the documented 400 body naming the field."""
    response = world["client"].post(
        "/api/v1/knowledge-bases/search/", {"query": "reverse charge", "min_score": False}, format="json"
    )
    body = assert_error(response, 400, fields=["min_score"])
    assert body["errors"]["min_score"] == [MESSAGE]


class NumbersSerializer(serializers.Serializer):
    whole = serializers.IntegerField(required=False)
    real = serializers.FloatField(required=False)
    money = serializers.DecimalField(max_digits=8, decimal_places=2, required=False)


@pytest.mark.parametrize(
    ("field", "value"), [("whole", 0), ("whole", 2), ("real", 0), ("real", 0.5), ("money", "0.50")]
)
def test_numbers_still_take_numbers(field, value):
    """ASVS 5.0 V2.2.1: numbers (and zero) stay valid, decimals as strings."""
    serializer = NumbersSerializer(data={field: value})
    assert serializer.is_valid(), serializer.errors


@pytest.mark.parametrize("field", ["whole", "real", "money"])
def test_no_number_field_reads_a_boolean(field):
    """ASVS 5.0 V2.2.1: integer, float and decimal fields alike refuse booleans."""
    serializer = NumbersSerializer(data={field: False})
    assert not serializer.is_valid()
    assert serializer.errors[field] == [MESSAGE]
