"""Releases (``agents.releases``, ``agents.services.release_create``/``agent_activate``): what a release
holds, its hash, and that an API run runs it — not the live rows — while a test run runs the draft."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from agents import services
from agents.models import AgentTool, Execution, LearningExample, Release
from agents.releases import content_hash, snapshot_of, stored_redactions
from agents.runtime import (
    AgentNotRunnable,
    PersonaNotFound,
    ReleaseAndPersonaPinned,
    ReleaseNotFound,
    execute,
    loading,
)
from agents.selectors import agent_run_configuration, approved_examples
from personas import services as persona_services
from prisma_glow.audit.models import AuditEvent
from prisma_glow.exceptions import ConflictError
from tests.agents.runtime.conftest import builtin, guardrail, make_agent, vat_kb  # noqa: F401 (fixtures)
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    AgentKnowledgeFactory,
    ChunkFactory,
    DocumentFactory,
    KnowledgeBaseFactory,
    LearningExampleFactory,
    ModelProviderFactory,
    PersonaFactory,
    ToolFactory,
    TOTPDeviceFactory,
    release_now,
    totp_code,
)
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

QUESTION = "Who accounts for the VAT on cross-border B2B services?"
IBAN = "DE89370400440532013000"


def _url(agent) -> str:
    return f"/api/v1/agents/{agent.pk}/execute/"


@pytest.fixture
def full_agent(org, make_agent):  # noqa: F811 (the imported fixture)
    """A draft agent with every part a release holds: a provider with a key, a persona with its own
    settings, a built-in and an HTTP tool with a secret header and assignment settings, a knowledge
    base with top_k/min_score, guardrails, and an approved example whose identifier is redacted."""
    provider = ModelProviderFactory(
        organization=org,
        name="Firm model",
        kind="offline",
        api_key="sk-very-secret",
        default_model="m-default",
    )
    agent = make_agent(status="draft", provider=provider, tools=("vat-calculator",), guards=None)
    agent.personas.update(
        name="Careful", tone="formal", audience="Partners", language="de", temperature=Decimal("0.35"),
        max_tokens=700, model_override="m-override",
    )  # fmt: skip
    register = ToolFactory(
        organization=org, name="Client register", slug="client-register", secret_headers='{"X-Key": "tool-secret"}',
        description="Looks a client up.",
    )  # fmt: skip
    AgentTool.objects.create(agent=agent, tool=register, order=5, settings={"timeout": 3})
    agent.knowledge_assignments.update(top_k=7, min_score=0.25)
    guardrail(agent, 0, name="PII", kind="pii", action="redact", config={})
    guardrail(agent, 1, name="Topics", kind="keywords", action="block", config={"keywords": ["falcon"]})
    LearningExampleFactory(
        agent=agent, status="approved", input="Is [IBAN_1] valid?", output="Yes, [IBAN_1] is valid.",
        redactions=json.dumps({"[IBAN_1]": IBAN}),
    )  # fmt: skip
    LearningExampleFactory(agent=agent, status="approved", input="Plain question?", output="Plain answer.")
    return agent


# --- What a release holds -------------------------------------------------------------------------


def test_a_release_holds_every_part_of_the_configuration_and_no_secret(full_agent, editor):
    release = services.release_create(agent=full_agent, actor=editor, notes="  First cut.  ")
    assert (release.number, release.notes, release.created_by) == (1, "First cut.", editor)
    snap = release.snapshot
    assert snap["format"] == 1
    assert snap["agent"]["id"] == full_agent.pk and snap["agent"]["name"] == full_agent.name
    persona = snap["persona"]
    assert persona["name"] == "Careful" and persona["system_prompt"].startswith("You are a senior VAT")
    assert (persona["tone"], persona["audience"], persona["language"]) == ("formal", "Partners", "de")
    assert (persona["temperature"], persona["max_tokens"], persona["version"]) == ("0.35", 700, 1)
    assert release.persona == full_agent.personas.get()
    assert snap["provider"]["name"] == "Firm model" and snap["provider"]["kind"] == "offline"
    assert snap["model"] == "m-override"  # the persona's override wins over the agent's and provider's
    tools = {entry["tool"]["slug"]: entry for entry in snap["tools"]}
    assert set(tools) == {"vat-calculator", "client-register"}
    assert tools["client-register"]["settings"] == {"timeout": 3} and tools["client-register"]["order"] == 5
    assert tools["client-register"]["tool"]["description"] == "Looks a client up."
    assert tools["client-register"]["tool"]["input_schema"]["properties"] == {"q": {"type": "string"}}
    [knowledge] = snap["knowledge"]
    assert (knowledge["top_k"], knowledge["min_score"]) == (7, 0.25)
    assert knowledge["knowledge_base"]["name"] == "EU VAT guidance"
    guards = {entry["guardrail"]["name"]: entry for entry in snap["guardrails"]}
    assert guards["Topics"]["guardrail"]["config"] == {"keywords": ["falcon"]}
    assert guards["Topics"]["guardrail"]["action"] == "block" and guards["Topics"]["order"] == 1
    # Examples redacted in the snapshot, their mappings apart and encrypted at rest.
    assert [(e["input"], e["output"]) for e in snap["examples"]] == [
        ("Is [IBAN_1] valid?", "Yes, [IBAN_1] is valid."),
        ("Plain question?", "Plain answer."),
    ]
    assert stored_redactions(release) == [{"[IBAN_1]": IBAN}, {}]
    with connection.cursor() as cursor:
        cursor.execute("SELECT example_redactions FROM agents_release WHERE id = %s", [release.pk])
        raw = cursor.fetchone()[0]
    assert raw and IBAN not in raw
    text = json.dumps(snap)
    assert "sk-very-secret" not in text and "tool-secret" not in text and IBAN not in text
    assert "secret_headers" not in text and "api_key" not in text
    event = AuditEvent.objects.get(action="release.create")
    assert event.after["number"] == 1 and event.after["content_hash"] == release.content_hash
    # Numbers count up per agent.
    guardrail(full_agent, 2, name="Disclaimer", kind="disclaimer", action="append",
              applies_to_input=False, applies_to_output=True, config={"text": "Check it."})  # fmt: skip
    assert services.release_create(agent=full_agent, actor=editor).number == 2


def test_the_hash_is_canonical_stable_and_changes_with_any_part(full_agent, editor):
    release = services.release_create(agent=full_agent, actor=editor)
    configuration = agent_run_configuration(agent=full_agent)
    snap, mappings = snapshot_of(configuration, approved_examples(agent=full_agent))
    assert snap == release.snapshot
    assert content_hash(snap, mappings) == release.content_hash
    assert content_hash(release.snapshot, stored_redactions(release)) == release.content_hash
    reordered = dict(reversed(list(copy.deepcopy(snap).items())))
    assert list(reordered) != list(snap) and content_hash(reordered, mappings) == release.content_hash
    changes = [
        lambda s, m: s["persona"].update(system_prompt=s["persona"]["system_prompt"] + " "),
        lambda s, m: s.update(model="another"),
        lambda s, m: s["tools"][0]["settings"].update(x=1),
        lambda s, m: s["knowledge"][0].update(top_k=8),
        lambda s, m: s["guardrails"][0]["guardrail"].update(action="warn"),
        lambda s, m: m[0].update({"[IBAN_1]": "DE00"}),
    ]
    seen = {release.content_hash}
    for change in changes:
        s, m = copy.deepcopy(snap), copy.deepcopy(mappings)
        change(s, m)
        seen.add(content_hash(s, m))
    assert len(seen) == len(changes) + 1


def test_an_identical_release_is_refused_with_409(full_agent, editor, editor_client):
    services.release_create(agent=full_agent, actor=editor)
    with pytest.raises(ConflictError, match="Nothing has changed since release 1"):
        services.release_create(agent=full_agent, actor=editor)
    assert Release.objects.filter(agent=full_agent).count() == 1


def test_a_release_needs_an_active_persona(org, editor):
    agent = AgentFactory(organization=org)
    PersonaFactory(agent=agent, is_active=False)
    with pytest.raises(ConflictError, match="no active persona"):
        services.release_create(agent=agent, actor=editor)
    assert not Release.objects.exists()


def test_a_persona_version_in_a_release_cannot_be_deleted_or_edited_in_place(full_agent, editor):
    persona = full_agent.personas.get()
    services.release_create(agent=full_agent, actor=editor)
    with pytest.raises(ConflictError, match="part of a release"):
        persona_services.persona_delete(persona=persona, actor=editor)
    # An edit becomes the next version, which the draft runs; the released one is untouched.
    successor = persona_services.persona_update(persona=persona, actor=editor, system_prompt="Changed.")
    assert successor.pk != persona.pk and (successor.version, successor.is_active) == (2, True)
    persona.refresh_from_db()
    assert persona.system_prompt.startswith("You are a senior VAT") and not persona.is_active


# --- What runs ------------------------------------------------------------------------------------


def _system_prompt(execution) -> str:
    return (
        execution.steps.filter(kind="model_call").order_by("ordinal").first().input["messages"][0]["content"]
    )


def test_an_api_run_runs_the_release_and_a_test_run_the_draft(make_agent, editor):  # noqa: F811
    agent = make_agent()
    release = agent.active_release
    execution = execute(agent, QUESTION, source="api")
    assert execution.release == release and execution.as_of == timezone.localdate()
    # Change the prompt and add a blocking guardrail after the release.
    agent.personas.update(is_active=False)
    PersonaFactory(agent=agent, version=2, is_active=True, system_prompt="Draft prompt.")
    guardrail(agent, 9, name="No VAT", kind="keywords", action="block", config={"keywords": ["VAT"]})
    api = execute(agent, QUESTION, source="api")
    assert api.status == "completed" and api.release == release and api.persona.version == 1
    assert _system_prompt(api).startswith("You are a senior VAT specialist.")
    test = execute(agent, "Who pays the tax?", source="console", is_test=True)
    assert test.release is None and test.persona.version == 2
    assert _system_prompt(test).startswith("Draft prompt.")
    assert execute(agent, QUESTION, source="console", is_test=True).status == "blocked"
    # Released and activated, the API runs it.
    second = release_now(agent)
    after = execute(agent, QUESTION, source="api")
    assert after.release == second and after.status == "blocked"


def test_an_api_run_may_pin_a_release_or_a_persona_version(make_agent, org):  # noqa: F811
    agent = make_agent()
    agent.personas.update(is_active=False)
    PersonaFactory(agent=agent, version=2, is_active=True, system_prompt="Version two.")
    release_now(agent)
    client = client_for(key=_key(org))
    body = client.post(_url(agent), {"input": QUESTION, "release": 1}, format="json").json()
    assert (body["release"], body["persona_version"]) == (1, 1)
    assert body["release_hash"] == Release.objects.get(agent=agent, number=1).content_hash
    body = client.post(_url(agent), {"input": QUESTION}, format="json").json()
    assert (body["release"], body["persona_version"]) == (2, 2)
    # The deprecated ``persona``: the newest approved (once activated) release with that version.
    body = client.post(_url(agent), {"input": QUESTION, "persona": 1}, format="json").json()
    assert (body["release"], body["persona_version"]) == (1, 1)
    # A release or persona version the body names but the agent lacks: 404, like any unknown object.
    error = assert_error(client.post(_url(agent), {"input": QUESTION, "persona": 9}, format="json"), 404)
    assert error["errors"]["persona"] == ["This agent has no persona version 9."]
    error = assert_error(client.post(_url(agent), {"input": QUESTION, "release": 7}, format="json"), 404)
    assert error["errors"]["release"] == ["This agent has no release 7."]
    assert_error(
        client.post(_url(agent), {"input": QUESTION, "release": "two"}, format="json"),
        400,
        fields=["release"],
    )
    # Pinning both is bad input (400 on release), and the schema says so, so that a fuzzer's
    # schema-valid body is accepted.
    error = assert_error(
        client.post(_url(agent), {"input": QUESTION, "release": 1, "persona": 1}, format="json"),
        400,
        fields=["release"],
    )
    assert error["errors"]["release"] == ["Pin either a release or a persona version, not both."]
    schema = client.get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    assert schema["ExecuteRequestRequest"]["anyOf"] == [
        {"properties": {"release": {"not": {"type": "integer"}}}},
        {"properties": {"persona": {"not": {"type": "integer"}}}},
    ]
    with pytest.raises(ReleaseNotFound):
        execute(agent, QUESTION, source="api", release=3)
    assert Execution.objects.filter(release__number=1).count() == 2


def test_a_persona_version_in_no_approved_release_is_a_409_like_an_unapproved_release(make_agent, org):  # noqa: F811
    """A persona version that exists but that no approved release uses may not run: 409, as a release
    that exists but was never approved (404 is for what does not exist); nothing is recorded."""
    agent = make_agent()  # release 1 (persona version 1), approved
    agent.personas.update(is_active=False)
    PersonaFactory(agent=agent, version=2, is_active=True)
    client = client_for(key=_key(org))
    # Version 2 exists in no release; then in release 2, which was never approved.
    for release_it in (False, True):
        if release_it:
            release_now(agent, activate=False)
        error = assert_error(client.post(_url(agent), {"input": QUESTION, "persona": 2}, format="json"), 409)
        assert error["code"] == "conflict"
        assert error["message"].startswith("No approved release of this agent uses persona version 2")
    error = assert_error(client.post(_url(agent), {"input": QUESTION, "release": 2}, format="json"), 409)
    assert "has never been approved" in error["message"]
    assert_error(client.post(_url(agent), {"input": QUESTION, "persona": 3}, format="json"), 404)
    assert not Execution.objects.exists()
    # Outside the API, the runtime says the same.
    with pytest.raises(AgentNotRunnable, match="No approved release") as raised:
        execute(agent, QUESTION, source="api", persona=2)
    assert not isinstance(raised.value, PersonaNotFound | ReleaseNotFound)
    with pytest.raises(PersonaNotFound, match="no persona version 3"):
        execute(agent, QUESTION, source="api", persona=3)
    body = client.post(_url(agent), {"input": QUESTION, "persona": 1}, format="json").json()
    assert (body["release"], body["persona_version"]) == (1, 1)


def test_pinning_a_release_and_a_persona_version_is_one_rule(make_agent):  # noqa: F811
    """The runtime states "a release or a persona version, not both" (``loading.check_pins``) for every
    caller; the API's 400 above is the same rule and message."""
    agent = make_agent()
    with pytest.raises(ReleaseAndPersonaPinned, match="not both"):
        loading.load(agent, 1, release=1)
    with pytest.raises(ReleaseAndPersonaPinned, match="not both"):
        execute(agent, QUESTION, source="api", release=1, persona=1)
    loading.check_pins(release=1, persona=None)
    loading.check_pins(release=None, persona=1)
    assert not Execution.objects.exists()


def test_another_agents_release_cannot_be_pinned(make_agent, org):  # noqa: F811
    mine, theirs = make_agent(name="Mine"), make_agent(name="Theirs")
    with pytest.raises(ReleaseNotFound, match="another agent"):
        execute(mine, QUESTION, source="api", release=theirs.active_release)


def _key(org) -> str:
    from tests.factories import APIKeyFactory

    return APIKeyFactory(organization=org, scopes=["read", "execute"]).plaintext


@pytest.mark.parametrize("part", ["tool", "knowledge base", "provider"])
def test_a_release_naming_a_deleted_part_is_refused_with_409(make_agent, org, part):  # noqa: F811
    provider = ModelProviderFactory(organization=org, name="Gone model", kind="offline")
    agent = make_agent(provider=provider if part == "provider" else None)
    tool = ToolFactory(organization=org, name="Gone tool", slug="gone-tool")
    AgentTool.objects.create(agent=agent, tool=tool, order=9)
    kb = KnowledgeBaseFactory(organization=org, name="Gone base")
    AgentKnowledgeFactory(agent=agent, knowledge_base=kb)
    release_now(agent)
    gone = {"tool": tool, "knowledge base": kb, "provider": provider}[part]
    # Unassigned from the draft first (an assignment protects it), then deleted.
    if part == "provider":
        agent.provider = None
        agent.save()
    elif part == "tool":
        tool.assignments.all().delete()
    else:
        kb.assignments.all().delete()
    gone.delete()
    response = client_for(key=_key(org)).post(_url(agent), {"input": QUESTION}, format="json")
    message = assert_error(response, 409)["message"]
    assert f"Release 2 of 'VAT adviser' uses the {part} '{gone.name}', which no longer exists" in message
    assert "create a new release" in message
    assert not Execution.objects.exists()


def test_as_of_reaches_the_retrieval_and_filters_documents_by_their_effective_dates(make_agent, vat_kb, org):  # noqa: F811
    future = DocumentFactory(knowledge_base=vat_kb, title="Rules of 2031", effective_from=dt.date(2031, 1, 1))
    ChunkFactory(
        document=future, ordinal=0, text="From 2031 the reverse charge applies to digital platforms."
    )
    agent = make_agent()
    client = client_for(key=_key(org))
    question = "Does the reverse charge apply to digital platforms?"
    body = client.post(_url(agent), {"input": question, "as_of": "2031-06-30"}, format="json").json()
    assert body["as_of"] == "2031-06-30"
    step = Execution.objects.get(pk=body["id"]).steps.get(kind="retrieval")
    assert step.input["as_of"] == "2031-06-30" and "Rules of 2031" in json.dumps(step.output)
    body = client.post(_url(agent), {"input": question}, format="json").json()
    step = Execution.objects.get(pk=body["id"]).steps.get(kind="retrieval")
    assert body["as_of"] == timezone.localdate().isoformat() and "Rules of 2031" not in json.dumps(
        step.output
    )
    assert_error(
        client.post(_url(agent), {"input": question, "as_of": "30/06/2031"}, format="json"),
        400,
        fields=["as_of"],
    )


def test_activating_an_earlier_release_rolls_back_and_is_audited(
    make_agent,  # noqa: F811
    editor,
    editor_client,
    admin_user,
):
    """A rollback is an activation like any other: the editor requests release 1, another admin
    approves it with a fresh second factor, and only then does release 1 run again (audited)."""
    agent = make_agent()
    first = agent.active_release
    guardrail(agent, 9, name="No VAT", kind="keywords", action="block", config={"keywords": ["VAT"]})
    second = release_now(agent)
    assert execute(agent, QUESTION, source="api").status == "blocked"
    response = editor_client.post(f"/api/v1/agents/{agent.pk}/activate/", {"release": 1}, format="json")
    assert response.status_code == 202, response.content
    requested = response.json()
    assert requested["status"] == "pending" and requested["release"] == first.number
    assert execute(agent, QUESTION, source="api").release == second  # nothing changes before approval

    approver = APIClient()
    approver.force_login(admin_user)
    device = TOTPDeviceFactory(user=admin_user)
    approve = f"/api/v1/agents/{agent.pk}/activation-requests/{requested['id']}/approve/"
    assert assert_error(approver.post(approve), 403)["code"] == "step_up_required"
    stepped = approver.post("/api/v1/auth/step-up/", {"code": totp_code(device)}, format="json")
    assert stepped.status_code == 200, stepped.content
    response = approver.post(approve)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"

    rolled = execute(agent, QUESTION, source="api")
    assert rolled.release == first and rolled.status == "completed"
    event = AuditEvent.objects.filter(action="agent.activate", object_id=str(agent.pk)).latest("pk")
    assert event.before["release"] == 2
    assert event.after["release"] == 1 and event.after["release_hash"] == first.content_hash
    assert event.actor_user == admin_user
    assert first.content_hash != second.content_hash
    # Asking for the active release again is refused (409), changes nothing and audits nothing.
    count = AuditEvent.objects.count()
    error = assert_error(
        editor_client.post(f"/api/v1/agents/{agent.pk}/activate/", {"release": 1}, format="json"), 409
    )
    assert "already active" in error["message"] or "already active" in str(error["errors"])
    assert AuditEvent.objects.count() == count
    error = assert_error(
        editor_client.post(f"/api/v1/agents/{agent.pk}/activate/", {"release": 5}, format="json"), 404
    )
    assert error["errors"]["release"] == ["This agent has no release 5."]


def test_an_active_agent_without_an_active_release_is_refused_for_api_runs(org):
    agent = AgentFactory(organization=org, status="active")
    PersonaFactory(agent=agent, is_active=True)
    from agents.runtime import AgentNotRunnable

    with pytest.raises(AgentNotRunnable, match="has no active release"):
        execute(agent, QUESTION, source="api")
    assert execute(agent, QUESTION, source="console", is_test=True).status == "completed"


def test_examples_of_a_release_run_restored_from_its_mappings(full_agent, editor):
    """The release keeps its examples when the live ones change, with their real values restored for
    the run (screened by the privacy boundary again)."""
    release_now(full_agent)
    LearningExample.objects.filter(agent=full_agent).update(status="rejected")
    from agents.runtime import loading

    loaded = loading.load(full_agent)
    assert loaded.examples == (
        (f"Is {IBAN} valid?", f"Yes, {IBAN} is valid."),
        ("Plain question?", "Plain answer."),
    )
    assert loading.load(full_agent, draft=True).examples == ()


def test_a_release_whose_examples_have_no_mapping_stores_none_and_runs(make_agent, editor):  # noqa: F811
    """Examples without identifiers: nothing is stored for their mappings, each reads back as ``{}``,
    the stored hash is the hash of what is stored, and the release runs with its examples."""
    agent = make_agent()
    LearningExampleFactory(agent=agent, status="approved", input="Q approved", output="A approved")
    release = release_now(agent)
    assert release.example_redactions == "" and stored_redactions(release) == [{}]
    assert content_hash(release.snapshot, stored_redactions(release)) == release.content_hash
    execution = execute(agent, QUESTION, source="api")
    assert execution.status == "completed" and execution.release == release
    messages = execution.steps.filter(kind="model_call").first().input["messages"]
    assert {"role": "user", "content": "Q approved"} in messages


def test_an_agent_that_never_ran_is_deleted_with_its_releases(make_agent, editor_client):  # noqa: F811
    agent = make_agent()
    assert Release.objects.filter(agent=agent).exists()
    response = editor_client.delete(f"/api/v1/agents/{agent.pk}/")
    assert response.status_code == 204, response.content
    assert not Release.objects.filter(agent_id=agent.pk).exists()
