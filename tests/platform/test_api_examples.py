"""The Swagger/OpenAPI examples are true: each documented request example, posted to the API with the
caller's own objects, is accepted (2xx); each example (request, response, error) is valid against
its schema; generated samples of numbers are realistic."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agents.activation import activation_request_create
from evaluations.models import Case, Suite
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    AgentGuardrailFactory,
    APIKeyFactory,
    ExecutionFactory,
    GuardrailFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolApprovalFactory,
    ToolFactory,
    UserFactory,
    release_now,
)

pytestmark = pytest.mark.django_db

# Body fields whose example value is an id (a release: its number): it stands for one of the
# caller's objects.
ID_FIELDS = {"agent", "tool", "knowledge_base", "guardrail", "conversation", "suite", "release"}
# Examples that cannot succeed in a test and the documented status they get instead, with why.
EXPECTED_REFUSALS = {
    ("POST /api/v1/auth/step-up/", "ACode"): (400, "the example code is not the current TOTP code"),
}


@pytest.fixture
def schema(org):
    owner = MembershipFactory(organization=org, role="owner", user=UserFactory()).user
    response = client_for(owner).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _resolve(node: Any, components: dict, depth: int = 0) -> Any:
    """OpenAPI 3.0 to JSON Schema: ``$ref`` inlined, ``nullable`` as a ``null`` type."""
    if isinstance(node, list):
        return [_resolve(item, components, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        if depth > 8:
            return {}
        return _resolve(components[node["$ref"].rsplit("/", 1)[-1]], components, depth + 1)
    resolved = {key: _resolve(value, components, depth) for key, value in node.items()}
    if resolved.pop("nullable", False):
        if "type" in resolved:
            resolved["type"] = [resolved["type"], "null"]
        else:
            resolved = {"anyOf": [resolved, {"type": "null"}]}
    return resolved


def _examples(schema: dict):
    """(label, name, kind, example value, its JSON Schema) for every example in the document."""
    components = schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            label = f"{method.upper()} {path}"
            for content in (operation.get("requestBody") or {}).get("content", {}).values():
                for name, example in (content.get("examples") or {}).items():
                    yield label, name, "request", example["value"], _resolve(content["schema"], components)
            for status, response in operation.get("responses", {}).items():
                for content in (response.get("content") or {}).values():
                    for name, example in (content.get("examples") or {}).items():
                        yield label, name, status, example["value"], _resolve(content["schema"], components)


def test_every_example_is_valid_against_its_schema(schema):
    """Request bodies, success answers and error answers alike (the 409 example is a real duplicate
    answer, the PII guardrail's config uses its real setting)."""
    problems, seen = [], 0
    for label, name, kind, value, body_schema in _examples(schema):
        seen += 1
        for error in Draft202012Validator(body_schema).iter_errors(value):
            problems.append(f"{label} {kind} {name}: {error.message} at {list(error.absolute_path)}")
    assert seen > 100 and not problems, "\n".join(problems)


def test_generated_number_samples_are_realistic(schema):
    """Swagger UI builds a sample from a number's pattern or bounds unless the schema gives one: a
    decimal carries a plain example ("12.500000", not "-0052975") and an integer whose maximum a
    JavaScript number cannot hold a small one (not 9223372036854776000)."""
    bad = []
    for name, component in schema["components"]["schemas"].items():
        for field, spec in (component.get("properties") or {}).items():
            # A request decimal is oneOf its string and an integer; the example is the whole's.
            if spec.get("format") == "decimal" or any(
                one.get("format") == "decimal" for one in spec.get("oneOf", [])
            ):
                example = spec.get("example")
                if not (isinstance(example, str) and re.fullmatch(r"(?:0|[1-9]\d*)(?:\.\d+)?", example)):
                    bad.append(f"{name}.{field}: {example!r}")
            if spec.get("type") == "integer" and spec.get("maximum", 0) > 2**53 - 1:
                if not 0 <= spec.get("example", -1) < 10**6:
                    bad.append(f"{name}.{field}: {spec.get('example')!r}")
    assert not bad, bad


@pytest.fixture
def world(org, settings):
    """The caller's objects that examples' ids and paths stand for."""
    settings.PROVIDER_ALLOWED_HOSTS = ["localhost:11434", "127.0.0.1:11434"]
    owner = MembershipFactory(organization=org, role="owner", user=UserFactory()).user
    agent = AgentFactory(organization=org, name="Tax helper", slug="tax-helper", status="active")
    PersonaFactory(agent=agent, is_active=True)
    ModelProviderFactory(organization=org, name="Offline engine", kind="offline", is_default=True)
    execution = ExecutionFactory(organization=org, agent=agent)
    tool = ToolFactory(
        organization=org,
        url_template="https://rates.example.com/ecb/{currency}",
        input_schema={"type": "object", "properties": {"currency": {"type": "string"}}},
    )
    release_now(agent)  # release 1, live; release 2 (a stricter guardrail) waits for activation
    AgentGuardrailFactory(agent=agent, guardrail=GuardrailFactory(organization=org, name="Stricter"))
    suite = Suite.objects.create(organization=org, agent=agent, name="VAT basics")
    Case.objects.create(suite=suite, name="Rate", input="What is the VAT on €100 at 19%?")
    return {
        "client": client_for(owner),
        "agents": agent,
        "release": release_now(agent, activate=False).number,
        "evaluation-suites": suite,
        # Objects that an example decides (and so closes): a fresh one for each request.
        "activation-requests": lambda: activation_request_create(
            agent=agent, actor=APIKeyFactory(organization=org, scopes=["write"]), notes="CI run passed."
        ),
        "tool-approvals": lambda: ToolApprovalFactory(
            execution__agent=agent, execution__persona=agent.personas.get(is_active=True), tool=tool
        ),
        "tools": tool,
        "guardrails": GuardrailFactory(organization=org),
        "knowledge-bases": KnowledgeBaseFactory(organization=org),
        "executions": execution,
        "api-keys": APIKeyFactory(organization=org, scopes=["read"]),
        "conversation": None,
    }


def _fill_path(path: str, world: dict) -> str:
    """``path`` with each ``{…}`` standing for the caller's object of the segment before it
    (``/agents/{agent_pk}/activation-requests/{id}/refuse/``: the agent, then a pending request)."""
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if segment.startswith("{"):
            target = world[segments[index - 1]]
            segments[index] = str((target() if callable(target) else target).pk)
    return "/".join(segments)


def _fill_ids(value: Any, world: dict) -> Any:
    ids = {
        "agent": world["agents"].pk,
        "tool": world["tools"].pk,
        "knowledge_base": world["knowledge-bases"].pk,
        "guardrail": world["guardrails"].pk,
        "conversation": world["conversation"],
        "suite": world["evaluation-suites"].pk,
        "release": world["release"],
    }
    if isinstance(value, dict):
        return {
            key: ids[key] if key in ID_FIELDS and isinstance(item, int) else _fill_ids(item, world)
            for key, item in value.items()
        }
    return value


def test_every_request_example_is_accepted(schema, world):
    """Posting each documented request body (ids and paths standing for the caller's objects) gives
    2xx, or the documented refusal listed above with its reason."""
    client = world["client"]
    failures, tried = [], 0
    requests = [
        (label, name, value) for label, name, kind, value, _ in _examples(schema) if kind == "request"
    ]
    # A conversation to follow up exists once the first question has been asked.
    requests.sort(key=lambda request: "conversation" in json.dumps(request[2]))
    for label, name, value in requests:
        method, path = label.split(" ", 1)
        resource = path.split("/")[3]
        url = _fill_path(path, world)
        body = _fill_ids(copy.deepcopy(value), world)
        response = getattr(client, method.lower())(url, body, format="json")
        tried += 1
        if resource == "agents" and path.endswith("/execute/") and response.status_code < 300:
            world["conversation"] = world["conversation"] or response.json().get("conversation")
        expected = EXPECTED_REFUSALS.get((label, name))
        ok = response.status_code == expected[0] if expected else 200 <= response.status_code < 300
        if not ok:
            failures.append(f"{label} {name}: {response.status_code} {response.content[:300]!r}")
    assert tried >= 25 and not failures, "\n".join(failures)


def test_the_conflict_examples_are_real_answers(schema, world, org):
    """The 409 example of a create is what a duplicate answers, word for word; a delete's is what
    deleting a tool in use answers (but for its name and count)."""
    client = world["client"]
    post = schema["paths"]["/api/v1/knowledge-bases/"]["post"]["responses"]["409"]
    example = post["content"]["application/json"]["examples"]["Error"]["value"]
    assert client.post("/api/v1/knowledge-bases/", {"name": "EU VAT"}, format="json").status_code == 201
    assert client.post("/api/v1/knowledge-bases/", {"name": "EU VAT"}, format="json").json() == example

    delete = schema["paths"]["/api/v1/tools/{id}/"]["delete"]["responses"]["409"]
    example = delete["content"]["application/json"]["examples"]["Error"]["value"]
    tool = world["tools"]
    assign = client.post(f"/api/v1/agents/{world['agents'].pk}/tools/", {"tool": tool.pk}, format="json")
    assert assign.status_code == 201
    answer = client.delete(f"/api/v1/tools/{tool.pk}/").json()
    expected = json.loads(
        json.dumps(example).replace("ECB exchange rate", tool.name).replace("2 agent", "1 agent")
    )
    assert answer == expected, answer


@pytest.mark.parametrize(
    ("metric", "limit"),
    [("cost", "0"), ("cost", "0.000000"), ("cost", "0.000001"), ("cost", "1.5"), ("tokens", "1.5"),
     ("tokens", "1000"), ("tokens", "1000.000000"), ("tokens", "0"), ("cost", "000.5"), ("cost", "0.112000"),
     ("cost", "00000000.112"), ("cost", "0.0000001")],
)  # fmt: skip
def test_the_schema_and_the_api_agree_on_a_budget_limit(schema, world, metric, limit):
    """Positive and whole for tokens: the schema (pattern and anyOf) accepts a budget exactly when the
    API creates it, so schema fuzzing needs no exclusion for budgets."""
    body = {"metric": metric, "period": "day", "limit": limit}
    request_schema = _resolve(
        schema["components"]["schemas"]["BudgetRequest"], schema["components"]["schemas"]
    )
    valid = Draft202012Validator(request_schema).is_valid(body)
    response = world["client"].post("/api/v1/budgets/", body, format="json")
    assert (response.status_code == 201) == valid, (valid, response.json())
