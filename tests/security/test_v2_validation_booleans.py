"""Booleans are booleans: every writable boolean the API schema declares takes JSON ``true`` /
``false`` only (``prisma_glow.api.strict``). ``1``, ``0``, ``"true"``, ``"yes"`` are a 400 naming the
field with "Must be true or false."; form bodies, which carry only text, take ``true`` / ``false``.

ASVS 5.0 V2.2.1: input is validated against what the schema allows (positive validation), not
coerced from whatever the client sent."""

from __future__ import annotations

import re

import pytest
from django.http import QueryDict
from rest_framework import serializers

from evaluations.models import Case, CaseResult, EvalRun, Suite
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    AgentKnowledgeFactory,
    AgentToolFactory,
    ExecutionFactory,
    GuardrailFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolFactory,
    release_now,
)
from tests.support.api import assert_error

MESSAGE = "Must be true or false."
WRITE_METHODS = ("post", "put", "patch")


@pytest.fixture
def world(org, owner):
    agent = AgentFactory(organization=org)
    return {
        # An owner: the organisation's own boolean (one_person_activation) is the owner's to change.
        "client": client_for(owner),
        "agent": agent,
        "agents/{agent_pk}/guardrails/{id}": AgentGuardrailFactory(agent=agent).pk,
        "agents/{agent_pk}/knowledge/{id}": AgentKnowledgeFactory(agent=agent).pk,
        "agents/{agent_pk}/tools/{id}": AgentToolFactory(agent=agent).pk,
        "agents/{agent_pk}/personas/{version}": PersonaFactory(agent=agent).version,
        "guardrails/{id}": GuardrailFactory(organization=org).pk,
        "model-providers/{id}": ModelProviderFactory(organization=org).pk,
        "tools/{id}": ToolFactory(organization=org).pk,
        # Evaluations (issue 17): a case's must_pass, and save-as-case's.
        "suite": (suite := Suite.objects.create(organization=org, agent=agent, name="Suite")),
        "evaluation-suites/{suite_pk}/cases/{id}": Case.objects.create(
            suite=suite, name="Case", input="Hi?"
        ).pk,
        "execution": ExecutionFactory(organization=org, agent=agent),
        # A run's case result: a person's mark (passed).
        "evaluation-case-results/{id}": CaseResult.objects.create(
            run=EvalRun.objects.create(organization=org, suite=suite, release=_release(agent)),
            case_name="Case",
        ).pk,
    }


def _release(agent):
    PersonaFactory(agent=agent, is_active=True)
    return release_now(agent, activate=False)


def writable_fields(client, wanted, *, with_spec: bool = False) -> list[tuple]:
    """(method, path, field) for every writable property of every request body in the schema for
    which ``wanted(spec)`` holds (and the property's schema, with ``with_spec``)."""
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
                        found.append((method, path, field, spec) if with_spec else (method, path, field))
    if with_spec:
        return sorted(found, key=lambda row: row[:3])
    return sorted(set(found))


def writable_booleans(client) -> list[tuple[str, str, str]]:
    """(method, path, field) for every writable boolean of every request body in /api/v1/schema/."""
    return writable_fields(client, lambda spec: spec.get("type") == "boolean")


def url_for(world, path: str) -> str:
    key = path.removeprefix("/api/v1/").rstrip("/")
    if "{" in key.rsplit("/", 1)[-1]:
        detail = world[key]
        key = key.rsplit("/", 1)[0]
        path = re.sub(r"\{(id|version)\}", str(detail), path)
    elif "{id}" in key:  # an action on an object (…/{id}/mark/)
        path = path.replace("{id}", str(world[key[: key.index("{id}") + 4]]))
    path = path.replace("{suite_pk}", str(world["suite"].pk)).replace(
        "{execution_pk}", str(world["execution"].pk)
    )
    return path.replace("{agent_pk}", str(world["agent"].pk))


def test_schema_declares_the_booleans_the_issue_names(world):
    """ASVS 5.0 V2.2.1: the parametrised tests below read the schema; they have something to check."""
    fields = {(path, field) for _, path, field in writable_booleans(world["client"])}
    assert ("/api/v1/agents/{agent_pk}/personas/", "activate") in fields
    assert ("/api/v1/model-providers/", "is_default") in fields
    assert len(fields) >= 10


@pytest.mark.parametrize("bad", [1, 0, "true", "false", "yes", "on", 1.0, [], {}])
def test_every_writable_boolean_refuses_non_booleans(world, bad):
    """ASVS 5.0 V2.2.1: every writable boolean of the schema refuses what is not a JSON boolean."""
    client = world["client"]
    failures = []
    for method, path, field in writable_booleans(client):
        response = getattr(client, method)(url_for(world, path), {field: bad}, format="json")
        body = response.json()
        if response.status_code != 400 or body.get("errors", {}).get(field) != [MESSAGE]:
            failures.append((method, path, field, response.status_code, body))
    assert failures == []


@pytest.mark.parametrize("good", [True, False])
def test_every_writable_boolean_accepts_json_booleans(world, good):
    """ASVS 5.0 V2.2.1: and takes JSON true / false."""
    client = world["client"]
    failures = []
    for method, path, field in writable_booleans(client):
        response = getattr(client, method)(url_for(world, path), {field: good}, format="json")
        errors = response.json().get("errors") or {} if response.status_code >= 400 else {}
        # POST and PUT miss the other required fields, and a guardrail must keep one stage: the
        # boolean itself must never be the problem, and a PATCH reaches the object.
        if field in errors or response.status_code not in (200, 400):
            failures.append((method, path, field, response.status_code, response.content[:300]))
    assert failures == []


def test_refusal_is_the_documented_error_body(world):
    """ASVS 5.0 V2.2.1: the refusal is the documented 400 body naming the field."""
    provider = world["model-providers/{id}"]
    response = world["client"].patch(f"/api/v1/model-providers/{provider}/", {"is_default": 1}, format="json")
    body = assert_error(response, 400, fields=["is_default"])
    assert body["errors"]["is_default"] == [MESSAGE]


class FlagSerializer(serializers.Serializer):
    flag = serializers.BooleanField()


def form(**values) -> QueryDict:
    data = QueryDict(mutable=True)
    data.update(values)
    return data


def test_endpoints_with_booleans_take_json_only(world):
    """ASVS 5.0 V2.2.1: no endpoint with a boolean reads form bodies today: a form is a 415."""
    tool = world["tools/{id}"]
    response = world["client"].patch(f"/api/v1/tools/{tool}/", {"is_enabled": "true"}, format="multipart")
    assert_error(response, 415)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("false", False), ("True", True), ("FALSE", False)]
)
def test_form_bodies_take_true_and_false_as_text(text, expected):
    """ASVS 5.0 V2.2.1: a form or multipart body (a QueryDict) carries text only: ``true`` /
    ``false`` are read."""
    serializer = FlagSerializer(data=form(flag=text))
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["flag"] is expected


@pytest.mark.parametrize("text", ["1", "0", "yes", "on", "t", "null"])
def test_form_bodies_refuse_other_text(text):
    """ASVS 5.0 V2.2.1: other text in a form body is refused."""
    serializer = FlagSerializer(data=form(flag=text))
    assert not serializer.is_valid()
    assert serializer.errors["flag"] == [MESSAGE]


@pytest.mark.parametrize("value", ["true", "false", 1, 0])
def test_json_data_never_reads_text_or_numbers(value):
    """ASVS 5.0 V2.2.1: JSON data never has text or numbers read as booleans."""
    serializer = FlagSerializer(data={"flag": value})
    assert not serializer.is_valid()
    assert serializer.errors["flag"] == [MESSAGE]


def test_a_nullable_boolean_still_takes_null(world):
    """ASVS 5.0 V2.2.1: null stays valid where the schema says nullable."""
    guardrail = world["guardrails/{id}"]
    response = world["client"].patch(
        f"/api/v1/guardrails/{guardrail}/", {"applies_to_input": None}, format="json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("value", ["1", "0", "yes", ""])
def test_boolean_filters_take_true_or_false_only(world, value):
    """ASVS 5.0 V2.2.1: query strings are text: a boolean filter takes ``true`` / ``false`` (any case), nothing else."""
    response = world["client"].get("/api/v1/tools/", {"is_builtin": value})
    body = assert_error(response, 400, fields=["is_builtin"])
    assert body["errors"]["is_builtin"] == ["Give true or false."]


@pytest.mark.parametrize("value", ["true", "FALSE"])
def test_boolean_filters_accept_true_and_false(world, value):
    """ASVS 5.0 V2.2.1: and takes them in any case."""
    response = world["client"].get("/api/v1/tools/", {"is_builtin": value})
    assert response.status_code == 200, response.content
