"""Who sees client identifiers (``agents.privacy``): the full value only on an execution or learning
example opened on its own, by an editor (or above) or the run's own requester; masked
(``DE89 •••• 3000``) in lists, object names, the audit log and for everyone else. Learning examples are
stored redacted with their mapping encrypted."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agents import services
from agents.models import Execution, LearningExample
from agents.privacy import may_see_identifiers
from prisma_glow.admin.scoping import AdminAccess
from prisma_glow.api.tenancy import Access
from prisma_glow.audit.models import AuditEvent
from tests.conftest import client_for
from tests.factories import (
    AgentFactory,
    APIKeyFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    FeedbackFactory,
    LearningExampleFactory,
    MembershipFactory,
)
from tests.support.admin import login
from tests.support.api import assert_error, results

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
IBAN_MASKED = "DE89 •••• 3000"
VAT = "DE136695976"
VAT_MASKED = "DE •••• 76"
QUESTION = f"Is the IBAN {IBAN} valid?"
#: A value no detector finds: only the run's own mapping knows it is a client identifier.
CLIENT_REF = "ZX-99-4411-ACME"


def _run(org, *, actor_user=None, actor_api_key=None, **fields):
    """An execution whose input and answer hold the IBAN, with the mapping the run kept."""
    execution = ExecutionFactory(
        agent=AgentFactory(organization=org),
        input=QUESTION + f" Reference {CLIENT_REF}.",
        output=f"Yes: {IBAN} is a valid German IBAN.",
        redactions=json.dumps({"[IBAN_1]": IBAN, "[REF_1]": CLIENT_REF}),
        actor_user=actor_user,
        actor_api_key=actor_api_key,
        **fields,
    )
    ExecutionStepFactory(
        execution=execution, kind="model_call", name="Model", input={"messages": [{"content": QUESTION}]}
    )
    return execution


def _stored(example_id) -> tuple[str, str, str]:
    """The learning example's row as the database holds it (the mapping's column still encrypted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT input, output, redactions FROM agents_learningexample WHERE id = %s", [example_id]
        )
        return cursor.fetchone()


def _audit_text(org) -> str:
    events = AuditEvent.objects.filter(organization=org).values("object_repr", "before", "after")
    return json.dumps(list(events), ensure_ascii=False)


# --- The rule ---------------------------------------------------------------------------------


def test_the_rule_for_executions(org, other_org, owner, admin_user, editor, viewer):
    requester_key = APIKeyFactory(organization=org)
    other_key = APIKeyFactory(organization=org, scopes=["admin"])
    other_viewer = MembershipFactory(organization=org, role="viewer").user
    by_viewer = _run(org, actor_user=viewer)
    by_key = _run(org, actor_api_key=requester_key)
    member = lambda user, role, organization=org: Access(organization=organization, role=role, user=user)  # noqa: E731

    for user, role in ((editor, "editor"), (admin_user, "admin"), (owner, "owner")):
        assert may_see_identifiers(member(user, role), by_viewer, opened_alone=True)
        # In a list, nobody does.
        assert not may_see_identifiers(member(user, role), by_viewer, opened_alone=False)
    assert may_see_identifiers(member(viewer, "viewer"), by_viewer, opened_alone=True)  # the requester
    assert not may_see_identifiers(member(viewer, "viewer"), by_viewer, opened_alone=False)
    assert not may_see_identifiers(member(other_viewer, "viewer"), by_viewer, opened_alone=True)
    assert not may_see_identifiers(member(viewer, "viewer"), by_key, opened_alone=True)
    # API keys: the requester's key only, whatever the scopes of another.
    key = lambda k: Access(organization=org, api_key=k)  # noqa: E731
    assert may_see_identifiers(key(requester_key), by_key, opened_alone=True)
    assert not may_see_identifiers(key(requester_key), by_key, opened_alone=False)
    assert not may_see_identifiers(key(other_key), by_key, opened_alone=True)
    assert not may_see_identifiers(key(requester_key), by_viewer, opened_alone=True)
    # Another organisation's editor: never (its API answers 404 before asking).
    outsider = MembershipFactory(organization=other_org, role="owner").user
    assert not may_see_identifiers(member(outsider, "owner", other_org), by_viewer, opened_alone=True)
    # The staff UI's access carries no user: the page passes request.user.
    staff = AdminAccess(organization=org, role="viewer", is_superuser=False)
    assert may_see_identifiers(staff, by_viewer, opened_alone=True, user=viewer)
    assert not may_see_identifiers(staff, by_viewer, opened_alone=True, user=other_viewer)
    assert may_see_identifiers(
        AdminAccess(organization=org, role=None, is_superuser=True), by_viewer, opened_alone=True
    )


def test_the_rule_for_learning_examples(org, viewer):
    other_viewer = MembershipFactory(organization=org, role="viewer").user
    as_member = lambda user: Access(organization=org, role="viewer", user=user)  # noqa: E731
    written = LearningExampleFactory(agent=AgentFactory(organization=org), created_by=viewer)
    assert may_see_identifiers(as_member(viewer), written, opened_alone=True)  # its author
    assert not may_see_identifiers(as_member(other_viewer), written, opened_alone=True)
    # Proposed from feedback: the requester of the run it corrects.
    run = _run(org, actor_user=viewer)
    from_feedback = LearningExampleFactory(
        agent=run.agent, source_feedback=FeedbackFactory(execution=run, rating=-1, correction="x")
    )
    assert may_see_identifiers(as_member(viewer), from_feedback, opened_alone=True)
    assert not may_see_identifiers(as_member(other_viewer), from_feedback, opened_alone=True)
    assert may_see_identifiers(
        Access(organization=org, role="editor", user=other_viewer), from_feedback, opened_alone=True
    )


# --- Executions in the API --------------------------------------------------------------------


def test_execution_list_masks_for_everyone(org, editor_client):
    run = _run(org)
    row = results(editor_client.get("/api/v1/executions/"))[0]
    assert row["id"] == run.pk
    assert row["input"] == f"Is the IBAN {IBAN_MASKED} valid? Reference ZX •••• ME."
    assert row["output"] == f"Yes: {IBAN_MASKED} is a valid German IBAN."
    assert IBAN not in json.dumps(row) and CLIENT_REF not in json.dumps(row)


def test_execution_list_query_count_does_not_grow_with_masking(org, editor_client):
    def count(n):
        Execution.objects.all().delete()
        for _ in range(n):
            _run(org)
        with CaptureQueriesContext(connection) as queries:
            assert len(results(editor_client.get("/api/v1/executions/"))) == n
        return len(queries)

    assert count(2) == count(8)


def test_execution_detail_shows_values_to_editors_and_the_requester_only(org, editor, viewer):
    key = APIKeyFactory(organization=org)
    run = _run(org, actor_user=viewer)
    url = f"/api/v1/executions/{run.pk}/"
    for client in (client_for(editor), client_for(viewer)):
        body = client.get(url).json()
        assert body["input"].startswith(QUESTION) and IBAN in body["output"]
        assert body["steps"][0]["input"]["messages"][0]["content"] == QUESTION
    other_viewer = MembershipFactory(organization=org, role="viewer").user
    for client in (client_for(other_viewer), client_for(key=key.plaintext)):
        body = client.get(url).json()
        assert body["input"] == f"Is the IBAN {IBAN_MASKED} valid? Reference ZX •••• ME."
        assert body["steps"][0]["input"]["messages"][0]["content"] == f"Is the IBAN {IBAN_MASKED} valid?"
        assert IBAN not in json.dumps(body) and CLIENT_REF not in json.dumps(body)


def test_an_execution_shows_a_typed_placeholder_as_typed(org, editor):
    """An execution keeps the input as typed: a placeholder the requester wrote is not replaced."""
    run = _run(org)
    Execution.objects.filter(pk=run.pk).update(input="What does [IBAN_1] stand for?")
    assert client_for(editor).get(f"/api/v1/executions/{run.pk}/").json()["input"] == (
        "What does [IBAN_1] stand for?"
    )


def test_execution_detail_for_an_api_key_requester(org):
    key = APIKeyFactory(organization=org)
    run = _run(org, actor_api_key=key)
    assert IBAN in client_for(key=key.plaintext).get(f"/api/v1/executions/{run.pk}/").json()["input"]
    listed = results(client_for(key=key.plaintext).get("/api/v1/executions/"))[0]
    assert IBAN_MASKED in listed["input"]


def test_execution_of_another_organisation_is_404_and_anonymous_401(org, other_org, api_client, editor):
    foreign = _run(other_org)
    assert_error(client_for(editor).get(f"/api/v1/executions/{foreign.pk}/"), 404)
    assert_error(api_client.get(f"/api/v1/executions/{_run(org).pk}/"), 401)


# --- Learning examples: stored redacted, shown by the rule ------------------------------------


def test_example_written_through_the_api_is_stored_redacted(org, editor_client, viewer_client):
    agent = AgentFactory(organization=org)
    response = editor_client.post(
        "/api/v1/learning-examples/",
        {"agent": agent.pk, "input": QUESTION, "output": f"Yes, {IBAN} is valid; VAT {VAT} too."},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["input"] == QUESTION  # the editor who wrote it sees what they wrote
    stored_input, stored_output, stored_mapping = _stored(body["id"])
    assert stored_input == "Is the IBAN [IBAN_1] valid?"
    assert stored_output == "Yes, [IBAN_1] is valid; VAT [VAT_1] too."
    assert stored_mapping and IBAN not in stored_mapping and VAT not in stored_mapping  # encrypted
    example = LearningExample.objects.get(pk=body["id"])
    assert json.loads(example.redactions) == {"[IBAN_1]": IBAN, "[VAT_1]": VAT}
    assert str(example) == f"{agent.name}: Is the IBAN {IBAN_MASKED} valid?"
    # The list masks for everyone; the detail shows the values to an editor, not to another viewer.
    listed = results(editor_client.get("/api/v1/learning-examples/"))[0]
    assert listed["output"] == f"Yes, {IBAN_MASKED} is valid; VAT {VAT_MASKED} too."
    url = f"/api/v1/learning-examples/{body['id']}/"
    assert editor_client.get(url).json()["output"] == f"Yes, {IBAN} is valid; VAT {VAT} too."
    assert viewer_client.get(url).json()["output"] == f"Yes, {IBAN_MASKED} is valid; VAT {VAT_MASKED} too."
    # The audit log holds neither value: the name is masked, the snapshot holds placeholders.
    created = AuditEvent.objects.get(action="learning_example.create", object_id=str(body["id"]))
    assert created.object_repr == f"{agent.name}: Is the IBAN {IBAN_MASKED} valid?"
    assert created.after["input"] == "Is the IBAN [IBAN_1] valid?" and created.after["redactions"] == "(set)"
    assert IBAN not in _audit_text(org) and VAT not in _audit_text(org)


def test_editing_an_example_restores_edits_and_redacts_again(org, editor_client):
    agent = AgentFactory(organization=org)
    example = services.learning_example_create(
        agent=agent, actor=None, input=QUESTION, output=f"Yes, {IBAN} is valid."
    )
    url = f"/api/v1/learning-examples/{example.pk}/"
    response = editor_client.patch(url, {"output": f"Yes, {IBAN} is valid, and so is {VAT}."}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["output"] == f"Yes, {IBAN} is valid, and so is {VAT}."
    assert _stored(example.pk)[:2] == (
        "Is the IBAN [IBAN_1] valid?",
        "Yes, [IBAN_1] is valid, and so is [VAT_1].",
    )
    example.refresh_from_db()
    assert json.loads(example.redactions) == {"[IBAN_1]": IBAN, "[VAT_1]": VAT}
    # Sending back what the editor sees changes nothing (no audit event, no return to review).
    events = AuditEvent.objects.filter(action="learning_example.update").count()
    editor_client.patch(url, {"input": QUESTION}, format="json")
    assert AuditEvent.objects.filter(action="learning_example.update").count() == events
    assert IBAN not in _audit_text(org) and VAT not in _audit_text(org)


def test_example_list_query_count_does_not_grow_with_masking(org, editor_client):
    agent = AgentFactory(organization=org)

    def count(n):
        LearningExample.objects.all().delete()
        for i in range(n):
            services.learning_example_create(agent=agent, actor=None, input=f"{QUESTION} {i}", output="Yes.")
        with CaptureQueriesContext(connection) as queries:
            rows = results(editor_client.get("/api/v1/learning-examples/"))
        assert len(rows) == n and all(IBAN_MASKED in r["input"] for r in rows)
        return len(queries)

    assert count(2) == count(8)


def test_feedback_proposes_an_example_stored_redacted_with_the_values_the_run_knew(org, viewer):
    run = _run(org, actor_user=viewer)
    response = client_for(viewer).post(
        f"/api/v1/executions/{run.pk}/feedback/",
        {"rating": -1, "comment": f"{IBAN} is fine", "correction": f"{IBAN} is valid ({CLIENT_REF})."},
        format="json",
    )
    assert response.status_code == 201, response.json()
    example_id = response.json()["learning_example"]
    stored_input, stored_output, _ = _stored(example_id)
    assert stored_input == "Is the IBAN [IBAN_1] valid? Reference [REF_1]."
    assert stored_output == "[IBAN_1] is valid ([REF_1])."
    # The requester of the run sees the example's values on its own page; another viewer does not.
    url = f"/api/v1/learning-examples/{example_id}/"
    assert client_for(viewer).get(url).json()["output"] == f"{IBAN} is valid ({CLIENT_REF})."
    other = MembershipFactory(organization=org, role="viewer").user
    assert client_for(other).get(url).json()["output"] == f"{IBAN_MASKED} is valid (ZX •••• ME)."
    # Nothing of it in the audit log: the feedback's comment and correction are masked there too.
    feedback_event = AuditEvent.objects.get(action="feedback.create")
    assert feedback_event.after["correction"] == f"{IBAN_MASKED} is valid (ZX •••• ME)."
    assert IBAN not in _audit_text(org) and CLIENT_REF not in _audit_text(org)


def test_a_viewers_feedback_on_another_members_run_does_not_show_them_its_values(org, editor):
    """Whoever gives the thumbs down becomes the proposed example's ``created_by``; for an example from feedback
    only the run's requester (and editors) see its values, so a viewer cannot read another member's
    identifiers through a thumbs down and the example it proposes."""
    run = _run(org, actor_user=editor)
    snoop = MembershipFactory(organization=org, role="viewer").user
    reader = client_for(snoop)
    assert IBAN not in json.dumps(reader.get(f"/api/v1/executions/{run.pk}/").json())
    response = reader.post(
        f"/api/v1/executions/{run.pk}/feedback/", {"rating": -1, "correction": "x"}, format="json"
    )
    assert response.status_code == 201, response.json()
    example = LearningExample.objects.get(pk=response.json()["learning_example"])
    assert example.created_by == snoop
    body = reader.get(f"/api/v1/learning-examples/{example.pk}/").json()
    assert IBAN not in json.dumps(body) and IBAN_MASKED in body["input"]
    assert not may_see_identifiers(
        Access(organization=org, role="viewer", user=snoop), example, opened_alone=True
    )
    page = login(snoop).get(f"/admin/agents/learningexample/{example.pk}/change/").content.decode()
    assert IBAN not in page and IBAN_MASKED in page
    # The run's requester still sees them.
    assert IBAN in client_for(editor).get(f"/api/v1/learning-examples/{example.pk}/").json()["input"]


def _rebuild_by_search(get, known: str = "DE89") -> str:
    """What a reader who sees ``DE89 •••• 3000`` rebuilds of the IBAN by searching digit by digit."""
    for _ in range(len(IBAN) - len(known)):
        for digit in "0123456789":
            if get(known + digit):
                known += digit
                break
        else:
            break
    return known


def test_searching_executions_texts_is_for_editors_only(org, editor):
    """A search that matched inside a masked identifier would rebuild it digit by digit: a viewer's
    (or an API key's) ``?search=`` is refused with a 403 that says why, on the list and on a detail."""
    run = _run(org, actor_user=editor)
    snoop = client_for(MembershipFactory(organization=org, role="viewer").user)
    response = snoop.get("/api/v1/executions/", {"search": "DE890"})
    body = assert_error(response, 403, fields=["search"])
    assert "editor role" in body["errors"]["search"][0] and body["code"] == "permission_denied"
    assert_error(snoop.get(f"/api/v1/executions/{run.pk}/", {"search": "DE890"}), 403, fields=["search"])
    key = APIKeyFactory(organization=org, scopes=["admin"])
    assert_error(
        client_for(key=key.plaintext).get("/api/v1/executions/", {"search": "DE89"}), 403, fields=["search"]
    )
    # An empty search is no search; other filters stay open to the viewer.
    assert [r["id"] for r in results(snoop.get("/api/v1/executions/", {"search": ""}))] == [run.pk]
    # An editor, who may open every execution in full, searches the texts.
    editor_client = client_for(editor)
    assert [r["id"] for r in results(editor_client.get("/api/v1/executions/", {"search": IBAN}))] == [run.pk]
    assert results(editor_client.get("/api/v1/executions/", {"search": "DE891"})) == []


def test_the_admin_search_box_searches_identifying_texts_for_editors_only(org, editor, viewer):
    run = _run(org)
    FeedbackFactory(execution=run, rating=-1, comment=f"{IBAN} is fine", correction=f"{IBAN} is valid.")
    for url in ("/admin/agents/execution/", "/admin/agents/feedback/"):
        reader = login(viewer)
        rebuilt = _rebuild_by_search(
            lambda q, reader=reader, url=url: IBAN_MASKED in reader.get(url, {"q": q}).content.decode()
        )
        assert rebuilt == "DE89", url
        # The agent's name is still searchable for them.
        assert IBAN_MASKED in reader.get(url, {"q": run.agent.name}).content.decode(), url
        assert "other roles search the agent" in reader.get(url).content.decode(), url
        staff = login(editor)
        assert IBAN_MASKED in staff.get(url, {"q": IBAN}).content.decode(), url
        assert IBAN_MASKED not in staff.get(url, {"q": "DE891"}).content.decode(), url


# --- The staff UI -----------------------------------------------------------------------------


def test_admin_lists_mask_and_pages_show_values_by_the_rule(org, editor, viewer):
    run = _run(org)
    FeedbackFactory(execution=run, rating=-1, correction=f"{IBAN} is valid.")
    example = services.learning_example_create(agent=run.agent, actor=None, input=QUESTION, output="Yes.")
    staff, reader = login(editor), login(viewer)
    for url in (
        "/admin/agents/execution/",
        "/admin/agents/feedback/",
        "/admin/agents/learningexample/",
        reverse("admin:agents_agent_detail", args=[run.agent_id]),
    ):
        page = staff.get(url).content.decode()
        assert IBAN_MASKED in page and IBAN not in page, url
    # An execution's page: the values for an editor, masked for a viewer who did not ask.
    detail = f"/admin/agents/execution/{run.pk}/change/"
    page = staff.get(detail).content.decode()
    assert IBAN in page and CLIENT_REF in page and "Client identifiers are masked" not in page
    page = reader.get(detail).content.decode()
    assert IBAN not in page and CLIENT_REF not in page and IBAN_MASKED in page
    assert "Client identifiers are masked" in page
    # A learning example's page: the same rule.
    change = f"/admin/agents/learningexample/{example.pk}/change/"
    assert IBAN in staff.get(change).content.decode()
    page = reader.get(change).content.decode()
    assert IBAN not in page and IBAN_MASKED in page


def test_dashboard_masks_the_errors_of_recent_failures(org, editor):
    ExecutionFactory(agent=AgentFactory(organization=org), status="failed", error=f"The tool refused {IBAN}.")
    page = login(editor).get("/admin/").content.decode()
    assert f"The tool refused {IBAN_MASKED}." in page and IBAN not in page


def test_admin_edit_of_an_example_is_stored_redacted(org, editor):
    agent = AgentFactory(organization=org)
    example = services.learning_example_create(agent=agent, actor=None, input=QUESTION, output="Yes.")
    response = login(editor).post(
        f"/admin/agents/learningexample/{example.pk}/change/",
        {"agent": agent.pk, "input": QUESTION, "output": f"Yes: {IBAN} passes the check digits."},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert _stored(example.pk)[:2] == (
        "Is the IBAN [IBAN_1] valid?",
        "Yes: [IBAN_1] passes the check digits.",
    )
    assert IBAN not in _audit_text(org)


# --- The data migration -----------------------------------------------------------------------

migration = importlib.import_module("agents.migrations.0007_learning_example_redactions")


def test_migration_redacts_the_examples_already_stored(org):
    run = _run(org)
    from_feedback = LearningExampleFactory(
        agent=run.agent,
        source_feedback=FeedbackFactory(execution=run, rating=-1, correction="x"),
        input=run.input,
        output=f"{IBAN} is valid ({CLIENT_REF}); write to anna.schmidt@example.com.",
    )
    by_hand = LearningExampleFactory(
        agent=run.agent,
        input=f"VAT {VAT}, SSN 536-22-8726, call +44 20 7946 0958",
        output="Card 4111 1111 1111 1111.",
    )
    clean = LearningExampleFactory(agent=run.agent, input="Who pays the VAT?", output="The customer.")
    migration.forwards(apps, None)
    assert _stored(from_feedback.pk)[:2] == (
        "Is the IBAN [IBAN_1] valid? Reference [REF_1].",
        "[IBAN_1] is valid ([REF_1]); write to [EMAIL_1].",
    )
    assert _stored(by_hand.pk)[:2] == ("VAT [VAT_1], SSN [SSN_1], call [PHONE_1]", "Card [CARD_1].")
    by_hand.refresh_from_db()
    assert json.loads(by_hand.redactions) == {
        "[VAT_1]": VAT,
        "[SSN_1]": "536-22-8726",
        "[PHONE_1]": "+44 20 7946 0958",
        "[CARD_1]": "4111 1111 1111 1111",
    }
    assert IBAN not in _stored(from_feedback.pk)[2]  # the mapping is stored encrypted
    assert _stored(clean.pk) == ("Who pays the VAT?", "The customer.", "")
    # Run again (a redacted example is left alone): nothing changes.
    before = [_stored(e.pk)[:2] for e in (from_feedback, by_hand, clean)]
    migration.forwards(apps, None)
    assert [_stored(e.pk)[:2] for e in (from_feedback, by_hand, clean)] == before
    # The values come back for those allowed to see them.
    shown = client_for(MembershipFactory(organization=org, role="editor").user).get(
        f"/api/v1/learning-examples/{from_feedback.pk}/"
    )
    assert shown.json()["output"] == f"{IBAN} is valid ({CLIENT_REF}); write to anna.schmidt@example.com."
