"""Numbers are numbers and decimals are strings or whole numbers, as the schema says
(``prisma_glow.api.strict``): every writable integer or number refuses JSON ``true`` / ``false``, which
DRF's ``FloatField`` read as ``1.0`` / ``0.0``; every writable decimal (a string with a pattern, or an
integer, in the schema) refuses a JSON number with a fraction, which a binary float cannot carry
exactly, and takes a JSON integer, which is exact (``"limit": 2000000`` answered 201 before decimals
were checked, and must still). Schemathesis found ``"min_score": false`` accepted with a 201.

ASVS 5.0 V2.2.1: input is validated against what the schema allows (positive validation), not
coerced from whatever the client sent."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from evaluations.models import Requirement
from prisma_glow.api.schema import integer_bounds
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    BudgetFactory,
    KnowledgeBaseFactory,
    LearningExampleFactory,
)
from tests.security.test_v2_validation_booleans import url_for, writable_fields
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


def writable_numbers(client) -> list[tuple[str, str, str]]:
    return writable_fields(client, lambda spec: spec.get("type") in ("integer", "number"))


def _decimal_string(spec: dict) -> dict | None:
    """A request decimal's string alternative (``oneOf``: the string, or an integer)."""
    return next((one for one in spec.get("oneOf", []) if one.get("format") == "decimal"), None)


def writable_decimals(client) -> list[tuple[str, str, str]]:
    return writable_fields(client, lambda spec: _decimal_string(spec) is not None)


def writable_decimal_integers(client) -> list[tuple[str, str, str, dict]]:
    """(method, path, field, the integer alternative) for every writable decimal."""
    rows = writable_fields(client, lambda spec: _decimal_string(spec) is not None, with_spec=True)
    return [
        (method, path, field, next(one for one in spec["oneOf"] if one.get("type") == "integer"))
        for method, path, field, spec in rows
    ]


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


def test_request_decimals_are_strings_or_integers_and_answers_strings(world):
    """ASVS 5.0 V2.2.1: a request decimal is declared as a string with its pattern or an integer within
    the field's bounds; the answer's decimal stays a string."""
    schemas = world["client"].get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    limit = schemas["BudgetRequest"]["properties"]["limit"]
    assert [one["type"] for one in limit["oneOf"]] == ["string", "integer"]
    assert limit["oneOf"][1] == {"type": "integer", "minimum": 1, "maximum": 999999999999}
    assert limit["oneOf"][0]["pattern"].startswith("^(?:0*[1-9]")
    temperature = schemas["PersonaRequest"]["properties"]["temperature"]["oneOf"][1]
    assert temperature == {"type": "integer", "minimum": 0, "maximum": 2}
    assert schemas["Budget"]["properties"]["limit"]["type"] == "string"
    assert schemas["Persona"]["properties"]["temperature"]["type"] == "string"


@pytest.mark.parametrize("bad", [0.5, 12.5, 2.0, 0.1 + 0.2])
def test_every_writable_decimal_refuses_json_fractions(world, bad):
    """ASVS 5.0 V2.2.1: every writable decimal of the schema refuses a JSON number that is not an
    integer (``2.0`` included: a float, not the exact integer the schema allows)."""
    client = world["client"]
    failures = []
    for method, path, field in writable_decimals(client):
        response = getattr(client, method)(url_for(world, path), {field: bad}, format="json")
        body = response.json()
        if response.status_code != 400 or body.get("errors", {}).get(field) != [DECIMAL_MESSAGE]:
            failures.append((method, path, field, response.status_code, body))
    assert failures == []


def test_every_writable_decimal_takes_the_integers_its_schema_allows(world):
    """ASVS 5.0 V2.2.1: every writable decimal takes a JSON integer at either end of its schema's
    integer range (the body may still miss other fields, but not this one), and refuses one just
    outside it."""
    client = world["client"]
    rows = writable_decimal_integers(client)
    assert len(rows) >= 8
    failures = []
    for method, path, field, integer in rows:
        for value, accepted in (
            (integer["minimum"], True),
            (integer["maximum"], True),
            (integer["minimum"] - 1, False),
            (integer["maximum"] + 1, False),
        ):
            response = getattr(client, method)(url_for(world, path), {field: value}, format="json")
            errors = response.json().get("errors", {}) if response.status_code >= 400 else {}
            if (field in errors) == accepted or (not accepted and errors[field] == [DECIMAL_MESSAGE]):
                failures.append((method, path, field, value, response.status_code, errors))
    assert failures == []


def test_a_tokens_budget_takes_a_json_integer_limit(world):
    """ASVS 5.0 V2.2.1: ``{"metric": "tokens", "period": "day", "limit": 2000000}`` is a 201 (as before
    decimals were checked), the answer's limit a string; a cost limit may be an integer too; zero, a
    fraction and too many digits are refused."""
    client = world["client"]
    body = {"metric": "tokens", "period": "day", "limit": 2000000}
    response = client.post("/api/v1/budgets/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["limit"] == "2000000"
    response = client.patch(f"/api/v1/budgets/{response.json()['id']}/", {"limit": 3}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["limit"] == "3"
    response = client.post(
        "/api/v1/budgets/", {"metric": "cost", "period": "month", "limit": 25}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["limit"] == "25.000000"
    for limit, message in (
        (0, "The limit must be greater than zero."),
        (2000000.5, DECIMAL_MESSAGE),
        (10**12, "Ensure that there are no more than 12 digits before the decimal point."),
    ):
        response = client.post("/api/v1/budgets/", {**body, "period": "week", "limit": limit}, format="json")
        assert assert_error(response, 400, fields=["limit"])["errors"]["limit"] == [message]


def test_a_decimal_given_as_a_string_is_taken(world):
    """ASVS 5.0 V2.2.1: the same value as a string, as the schema says, is accepted."""
    agent, version = world["agent"].pk, world["agents/{agent_pk}/personas/{version}"]
    client = world["client"]
    response = client.patch(
        f"/api/v1/agents/{agent}/personas/{version}/", {"temperature": 0.2}, format="json"
    )
    assert assert_error(response, 400, fields=["temperature"])["errors"]["temperature"] == [DECIMAL_MESSAGE]
    response = client.patch(f"/api/v1/agents/{agent}/personas/{version}/", {"temperature": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["temperature"] == "1.00"
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
    ("field", "value"),
    [
        ("whole", 0),
        ("whole", 2),
        ("real", 0),
        ("real", 0.5),
        ("money", "0.50"),
        ("money", 0),
        ("money", 999999),
        ("money", -12),
    ],
)
def test_numbers_still_take_numbers(field, value):
    """ASVS 5.0 V2.2.1: numbers (and zero) stay valid, decimals as strings or JSON integers."""
    serializer = NumbersSerializer(data={field: value})
    assert serializer.is_valid(), serializer.errors


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.5, DECIMAL_MESSAGE),
        (1.0, DECIMAL_MESSAGE),
        (1000000, "Ensure that there are no more than 6 digits before the decimal point."),
    ],
)
def test_a_decimal_refuses_floats_and_integers_beyond_its_digits(value, message):
    """ASVS 5.0 V2.2.1: a float never reaches a decimal; an integer is held to the field's digits."""
    serializer = NumbersSerializer(data={"money": value})
    assert not serializer.is_valid()
    assert serializer.errors["money"] == [message]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_digits": 8, "decimal_places": 2},
        {"max_digits": 3, "decimal_places": 2, "min_value": "0", "max_value": "2"},
        {"max_digits": 4, "decimal_places": 3, "min_value": "0", "max_value": "1"},
        {"max_digits": 4, "decimal_places": 2, "min_value": "-1.5", "max_value": "7.5"},
        {"max_digits": 18, "decimal_places": 6, "min_value": "0.000001"},
        {"max_digits": 3, "decimal_places": 3},
        {"max_digits": 5, "decimal_places": 2, "min_value": "0.2", "max_value": "0.8"},
    ],
)
def test_declared_integer_bounds_are_what_the_field_accepts(kwargs):
    """ASVS 5.0 V2.2.1: the integers the schema declares for a decimal (``integer_bounds``) are exactly
    the JSON integers the field accepts, so that schema-valid means accepted and the reverse."""
    from decimal import Decimal

    field = serializers.DecimalField(
        **{key: Decimal(value) if key.endswith("value") else value for key, value in kwargs.items()}
    )
    bounds = integer_bounds(field)
    low, high = bounds if bounds is not None else (1, 0)
    probe = range(-1200, 1200) if low is None or high is None else range(low - 3, high + 4)
    if low is not None and high is not None and high - low > 2000:
        probe = [*range(low - 3, low + 4), *range(high - 3, high + 4)]
    for value in probe:
        try:
            field.run_validation(value)
            accepted = True
        except serializers.ValidationError:
            accepted = False
        declared = (low is None or value >= low) and (high is None or value <= high)
        assert accepted == declared, (value, bounds)


@pytest.mark.parametrize("field", ["whole", "real", "money"])
def test_no_number_field_reads_a_boolean(field):
    """ASVS 5.0 V2.2.1: integer, float and decimal fields alike refuse booleans."""
    serializer = NumbersSerializer(data={field: False})
    assert not serializer.is_valid()
    assert serializer.errors[field] == [MESSAGE]
