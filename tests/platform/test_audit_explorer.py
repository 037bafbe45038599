"""The audit explorer (issue 18, journey 6): the audit log's staff page filtered by agent, actor, action
and dates, runs hidden unless asked for, each event's before and after labelled, the list as CSV."""

from __future__ import annotations

import csv
import datetime
import importlib
import io

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from agents import services as agent_services
from personas import services as persona_services
from prisma_glow.audit.models import AuditEvent, AuditEventAgent
from prisma_glow.audit.services import agent_of, audit_record
from tests.factories import (
    AgentFactory,
    AgentToolFactory,
    BudgetFactory,
    ExecutionFactory,
    FeedbackFactory,
    MembershipFactory,
    OrganizationFactory,
    PersonaFactory,
    ToolFactory,
    UserFactory,
)
from tests.support.admin import login

URL = "/admin/audit/auditevent/"


def listing(client, **params) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def table(html: str) -> str:
    """The events table of a listing (the filters' choices name every agent and action)."""
    return html.split('id="audit-events"')[1].split("</table>")[0] if 'id="audit-events"' in html else ""


def rows(client, **params) -> list[dict]:
    response = client.get(URL, {**params, "export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def firm(org, admin_user, editor):
    """Journey 6: the VAT adviser, edited by user A (``editor``) yesterday; another agent; a run."""
    adviser = AgentFactory(organization=org, name="VAT adviser")
    other = AgentFactory(organization=org, name="Payroll helper")
    yesterday = timezone.localtime() - datetime.timedelta(days=1)
    with time_machine.travel(yesterday.replace(hour=10, minute=0), tick=True):
        persona = persona_services.persona_create(
            agent=adviser, actor=admin_user, name="VAT specialist", system_prompt="You answer VAT questions."
        )
        persona = persona_services.persona_update(
            persona=persona, actor=editor, system_prompt="You answer VAT questions.\nCite the article."
        )
        agent_services.agent_update(agent=other, actor=editor, description="Payslips")
    run = ExecutionFactory(agent=adviser)
    audit_record(organization=org, action="agent.execute", actor=editor, obj=run, after={"agent": adviser.pk})
    return {"adviser": adviser, "other": other, "persona": persona, "yesterday": yesterday.date(), "run": run}


def test_journey_6_who_changed_the_vat_advisers_persona_yesterday(admin_role_client, firm, editor):
    """Filtered by the agent and yesterday's date: the persona edit, by user A; the run is hidden."""
    day = firm["yesterday"].isoformat()
    found = rows(admin_role_client, agent=firm["adviser"].pk, since=day, until=day)
    assert [(r["action"], r["actor"], r["agent"]) for r in found] == [
        ("persona.update", editor.username, "VAT adviser"),
        ("persona.create", found[1]["actor"], "VAT adviser"),
    ]
    html = table(listing(admin_role_client, agent=firm["adviser"].pk, since=day, until=day))
    assert "Persona: update" in html and editor.username in html
    assert "Agent: run" not in html and "Payroll helper" not in html


def test_runs_are_hidden_unless_asked_for(admin_role_client, firm):
    assert "agent.execute" not in {r["action"] for r in rows(admin_role_client)}
    with_runs = rows(admin_role_client, runs="on", agent=firm["adviser"].pk)
    assert "agent.execute" in {r["action"] for r in with_runs}
    assert [r["action"] for r in rows(admin_role_client, action="agent.execute")] == ["agent.execute"]


def test_each_filter(admin_role_client, firm, editor, admin_user, org):
    everything = rows(admin_role_client)
    assert {r["action"] for r in everything} >= {"persona.create", "persona.update", "agent.update"}
    # Actor.
    assert {r["actor"] for r in rows(admin_role_client, actor=f"user:{editor.pk}")} == {editor.username}
    assert {r["actor"] for r in rows(admin_role_client, actor=f"user:{admin_user.pk}")} == {
        admin_user.username
    }
    audit_record(organization=org, action="organization.update", actor=None, obj=org)
    assert [r["action"] for r in rows(admin_role_client, actor="system")] == ["organization.update"]
    # Action, exact and a whole group.
    assert {r["action"] for r in rows(admin_role_client, action="persona.update")} == {"persona.update"}
    assert {r["action"] for r in rows(admin_role_client, action="persona.*")} == {
        "persona.create",
        "persona.update",
    }
    # Agent: the other agent's settings only.
    assert [r["action"] for r in rows(admin_role_client, agent=firm["other"].pk)] == ["agent.update"]
    # Dates: nothing before yesterday; today holds the organisation's update only.
    before = (firm["yesterday"] - datetime.timedelta(days=1)).isoformat()
    assert rows(admin_role_client, until=before) == []
    today = timezone.localdate().isoformat()
    assert "persona.update" not in {r["action"] for r in rows(admin_role_client, since=today)}


def test_searching_the_agents_name_finds_its_persona_changes(admin_role_client, firm, editor):
    """Issue 18: persona entries are named "VAT specialist v1", without the agent; the search also
    matches the name of the agent an event belongs to — and still the object's name and the actor."""
    found = {r["action"] for r in rows(admin_role_client, q="vat ADVISER")}
    assert found == {"persona.create", "persona.update"}
    assert {r["agent"] for r in rows(admin_role_client, q="specialist")} == {"VAT adviser"}
    assert {r["actor"] for r in rows(admin_role_client, q=editor.username)} == {editor.username}
    assert rows(admin_role_client, q="nothing like it") == []
    assert "errorlist" in listing(admin_role_client, q="x" * 201)


def test_actions_are_grouped_and_readable(admin_role_client, firm):
    html = listing(admin_role_client)
    assert '<optgroup label="Persona">' in html
    assert '<option value="persona.*">All persona actions</option>' in html
    assert '<option value="persona.update">Persona: update</option>' in html


def test_bad_filters_are_explained_not_a_500(admin_role_client, firm, other_org):
    stranger = AgentFactory(organization=other_org, name="Elsewhere")
    for params in (
        {"agent": stranger.pk},
        {"agent": "seven"},
        {"since": "yesterday"},
        {"since": "2026-02-03", "until": "2026-02-01"},
        {"actor": "user:abc"},
        {"action": "nope.*"},
    ):
        html = listing(admin_role_client, **params)
        assert "errorlist" in html and "Correct the filters" in html, params
        assert table(html) == ""
    assert listing(admin_role_client, page="x").count("<tr>") > 1
    assert "The end date is before the start date." in listing(
        admin_role_client, since="2026-02-03", until="2026-02-01"
    )
    response = admin_role_client.get(URL, {"since": "nope", "export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")


def test_the_diff_is_labelled_with_names_and_readable_json(admin_role_client, firm, editor):
    event = AuditEvent.objects.get(action="persona.update")
    html = admin_role_client.get(f"{URL}{event.pk}/change/").content.decode()
    assert ">System prompt</th>" in html and ">Created by</th>" in html and ">Agent</th>" in html
    assert "created_by_id</th>" not in html and "system_prompt</th>" not in html
    assert "VAT adviser (#" in html  # the foreign key by its name
    assert "Cite the article." in html and "pg-audit-line-changed" in html  # a line diff of the prompt
    assert "Persona: update" in html


def test_json_values_are_shown_indented_not_as_quoted_strings(admin_role_client, org, editor):
    agent = AgentFactory(organization=org, name="Settings agent")
    event = audit_record(
        organization=org,
        action="agent.update",
        actor=editor,
        obj=agent,
        before={"settings": {"a": 1}},
        after={"settings": {"a": 2, "b": ["x"]}, "is_enabled": True},
    )
    html = admin_role_client.get(f"{URL}{event.pk}/change/").content.decode()
    assert "{\n  &quot;a&quot;: 2,\n  &quot;b&quot;: [\n    &quot;x&quot;" in html
    assert "pg-audit-block" in html and ">Yes<" in html


def test_the_event_belongs_to_its_agent_by_the_objects_relations(org, editor):
    agent = AgentFactory(organization=org)
    persona = PersonaFactory(agent=agent, is_active=True)
    assignment = AgentToolFactory(agent=agent, tool=ToolFactory(organization=org))
    run = ExecutionFactory(agent=agent)
    assert agent_of(agent) == agent_of(persona) == agent_of(assignment) == agent_of(run) == agent.pk
    assert agent_of(FeedbackFactory(execution=run)) == agent.pk  # one relation further
    assert agent_of(BudgetFactory(organization=org, agent=None)) is None
    assert agent_of(org) is None and agent_of(None) is None
    assert agent_of(SimpleLazyObject(lambda: editor)) is None  # a request's user, as events of people get it
    assert agent_of(SimpleLazyObject(lambda: persona)) == agent.pk
    release = agent_services.release_create(agent=agent, actor=editor)
    event = AuditEvent.objects.get(action="release.create")
    assert event.agent_link.agent_id == agent.pk and agent_of(release) == agent.pk


def test_earlier_events_are_backfilled_from_what_they_stored(org):
    """Audit migration 0007's SQL: events written before it (no row) get their agent from the object
    or the snapshot, the others none."""
    migration = importlib.import_module("prisma_glow.audit.migrations.0007_auditeventagent")
    agent = AgentFactory(organization=org)
    made = {}
    for name, fields in {
        "agent": {"object_type": "agents.agent", "object_id": str(agent.pk)},
        "persona": {"object_type": "personas.persona", "object_id": "9", "after": {"agent_id": agent.pk}},
        "deleted": {"object_type": "agents.agenttool", "object_id": "3", "before": {"agent_id": agent.pk}},
        "run": {"object_type": "agents.execution", "object_id": "4", "after": {"agent": agent.pk}},
        "tool": {"object_type": "tools.tool", "object_id": "5", "after": {"agent": "name", "agent_id": None}},
    }.items():
        event = AuditEvent(organization=org, action=f"{name}.x", at=timezone.now(), hash=f"h{name}", **fields)
        event.save()
        made[name] = event
    sql = migration.BACKFILL_POSTGRESQL if connection.vendor == "postgresql" else migration.BACKFILL_SQLITE
    with connection.cursor() as cursor:
        cursor.execute(sql)
    links = dict(AuditEventAgent.objects.values_list("event_id", "agent_id"))
    assert {name: links.get(e.pk) for name, e in made.items()} == {
        "agent": agent.pk,
        "persona": agent.pk,
        "deleted": agent.pk,
        "run": agent.pk,
        "tool": None,
    }


def test_the_agent_rows_are_append_only(org, editor):
    agent = AgentFactory(organization=org)
    event = agent_services.agent_update(
        agent=agent, actor=editor, description="x"
    ) and AuditEvent.objects.get(action="agent.update")
    link = event.agent_link
    with pytest.raises(PermissionError):
        link.save()
    with pytest.raises(PermissionError):
        link.delete()
    with pytest.raises(PermissionError):
        AuditEventAgent.objects.filter(pk=link.pk).update(agent_id=1)
    if connection.vendor == "postgresql":
        from django.db import DatabaseError, transaction

        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE audit_auditeventagent SET agent_id = 1 WHERE event_id = %s", [event.pk]
                )


def _queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as captured:
        listing(client, **params)
    return len(captured)


def test_the_list_costs_the_same_queries_however_many_events_and_agents(admin_role_client, org, editor):
    def add(n):
        for i in range(n):
            agent = AgentFactory(organization=org)
            agent_services.agent_update(agent=agent, actor=editor, description=f"d{i}")
            persona = PersonaFactory(agent=agent)
            audit_record(organization=org, action="persona.update", actor=editor, obj=persona)

    add(2)
    small = (
        _queries(admin_role_client),
        _queries(admin_role_client, agent=AuditEventAgent.objects.first().agent_id),
    )
    add(30)
    large = (
        _queries(admin_role_client),
        _queries(admin_role_client, agent=AuditEventAgent.objects.first().agent_id),
    )
    assert small == large


@pytest.mark.parametrize("unused", [None])
def test_an_organisation_without_agents_still_lists(unused, db):
    org = OrganizationFactory()
    admin = UserFactory(username="solo")
    MembershipFactory(user=admin, organization=org, role="admin")
    assert "No event matches these filters." in listing(login(admin))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles are PostgreSQL's")
def test_the_app_role_appends_agent_rows_but_cannot_change_them(org, owner):
    """``grant_app_role``: the application's role inserts an event's agent row with the event, and may
    not update, delete or truncate those rows (as for the events)."""
    import uuid

    from django.core.management import call_command
    from django.db import DatabaseError, transaction

    agent = AgentFactory(organization=org)
    role = f"prisma_glow_app_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")  # rolled back with the test's transaction
    call_command("grant_app_role", role, stdout=None)
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
        try:
            event = audit_record(organization=org, action="agent.update", actor=owner, obj=agent)
            assert AuditEventAgent.objects.get(event=event).agent_id == agent.pk
            for sql in (
                "UPDATE audit_auditeventagent SET agent_id = 1",
                "DELETE FROM audit_auditeventagent",
                "TRUNCATE audit_auditeventagent",
            ):
                with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                    cursor.execute(sql)
        finally:
            cursor.execute("RESET ROLE")


def test_the_actions_listed_are_those_of_the_organisations_log(org, other_org, editor):
    """``actions_in`` (a recursive query, one index probe per action) finds what ``DISTINCT`` finds."""
    from prisma_glow.audit.explorer import actions_in

    for action in ("persona.update", "agent.execute", "agent.update", "agent.execute", "api_key.rotate"):
        audit_record(organization=org, action=action, actor=editor)
    audit_record(organization=other_org, action="theirs.only", actor=None)
    expected = sorted(set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True)))
    assert (
        actions_in(org) == expected == ["agent.execute", "agent.update", "api_key.rotate", "persona.update"]
    )
    assert "theirs.only" in actions_in(None) and actions_in(OrganizationFactory()) == []


def test_a_deleted_agents_events_can_still_be_filtered(admin_role_client, org, editor):
    """The events keep their agent; the filter offers the deleted agent by the name its deletion's
    event recorded."""
    agent = AgentFactory(organization=org, name="Retired helper")
    agent_id = agent.pk
    agent_services.agent_update(agent=agent, actor=editor, description="last words")
    agent_services.agent_delete(agent=agent, actor=editor)
    assert f'<option value="{agent_id}">Retired helper (deleted)</option>' in listing(admin_role_client)
    found = rows(admin_role_client, agent=agent_id)
    assert [r["action"] for r in found] == ["agent.delete", "agent.update"]
    assert {r["agent"] for r in found} == {f"deleted agent #{agent_id}"}
