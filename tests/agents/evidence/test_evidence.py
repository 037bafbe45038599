"""The evidence pack (``agents.evidence``): JSON and printable HTML through the API and the staff UI,
identifiers masked per requester, and ``manage.py verify_evidence`` on good and tampered packs."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from agents.evidence import FORMAT, FORMAT_VERSION
from agents.models import Release
from agents.runtime import execute
from knowledge.models import Document
from prisma_glow.audit.models import AuditEvent
from tests.agents.evidence.conftest import CALCULATION, IBAN, QUESTION
from tests.conftest import client_for
from tests.factories import APIKeyFactory, MembershipFactory, UserFactory
from tests.support.admin import login
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


def _url(execution_id: int, fmt: str = "") -> str:
    return reverse("execution-evidence", args=[execution_id]) + (f"?format={fmt}" if fmt else "")


@pytest.fixture
def run(vat_agent, editor):
    """A completed API run of release 1 that retrieved and cited passages, with an IBAN in its input."""
    execution = execute(vat_agent, QUESTION, actor=editor, source="api")
    assert execution.status == "completed", execution.error
    return execution


# --- The pack -------------------------------------------------------------------------------------


def test_the_pack_holds_release_texts_passages_verdicts_usage_and_audit_chain(run, vat_agent, editor_client):
    response = editor_client.get(_url(run.pk))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    pack = response.json()
    assert (pack["format"], pack["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert pack["generated_at"] and pack["generated_for"] == run.actor_user.get_username()
    release = vat_agent.active_release
    assert pack["release"] == {"id": release.pk, "number": 1, "content_hash": release.content_hash}
    assert pack["identifiers_masked"] is False
    assert pack["execution"]["input"] == QUESTION and pack["execution"]["output"] == run.output
    assert pack["execution"]["status"] == "completed" and pack["execution"]["as_of"] == run.as_of.isoformat()
    assert pack["provider"]["kind"] == "offline" and pack["provider"]["model"] == run.model
    assert pack["usage"]["tokens_in"] == run.tokens_in and Decimal(pack["usage"]["cost"]) == run.cost
    manual = Document.objects.get(title="VAT manual")
    cited = [p for p in pack["passages"] if p["cited_as"]]
    assert cited and cited[0]["document_id"] == manual.pk
    assert cited[0]["document_sha256"] == manual.sha256 and cited[0]["page"] == 12
    assert {p["document_title"] for p in pack["passages"]} <= {"VAT manual", "Office handbook"}
    assert [g["name"] for g in pack["guardrails"]][:2] == ["PII (input)", "Prompt injection (input)"]
    assert all({"status", "verdict", "stage"} <= set(g) for g in pack["guardrails"])
    events = pack["audit_events"]
    stored = AuditEvent.objects.get(action="agent.execute", object_id=str(run.pk))
    assert [e["id"] for e in events] == [stored.pk]
    assert events[0]["hash"] == stored.hash and events[0]["prev_hash"] == stored.prev_hash
    assert (
        events[0]["hash_version"] == stored.hash_version
        and events[0]["after"]["release_hash"] == release.content_hash
    )


def test_tool_calls_are_in_the_pack_with_arguments_and_results(vat_agent, editor, editor_client):
    execution = execute(vat_agent, CALCULATION, actor=editor, source="api")
    pack = editor_client.get(_url(execution.pk)).json()
    (call,) = pack["tool_calls"]
    assert call["name"] == "VAT calculator" and call["status"] == "ok"
    assert call["arguments"] == {"net": "1000.00", "rate": "19"}
    assert call["result"]["output"]["vat"] == "190.00"


def test_a_draft_run_says_draft(make_agent, editor, editor_client):
    agent = make_agent(status="draft", name="Draft adviser")
    execution = execute(agent, QUESTION, actor=editor, source="console", is_test=True)
    assert editor_client.get(_url(execution.pk)).json()["release"] == "draft"


def test_identifiers_are_masked_unless_the_requester_may_see_them(vat_agent, org, run, viewer_client):
    """The execution's own rule: an editor and the run's requester see the values; a viewer and another
    key get them masked (and the pack says so)."""
    masked = viewer_client.get(_url(run.pk)).json()
    assert masked["identifiers_masked"] is True
    assert "3704 0044" not in json.dumps(masked, ensure_ascii=False)
    assert "DE89 •••• 3000" in masked["execution"]["input"]
    key = APIKeyFactory(organization=org, scopes=["read", "execute"])
    key_client = client_for(key=key.plaintext)
    own = key_client.post(reverse("agent-execute", args=[vat_agent.pk]), {"input": QUESTION}, format="json")
    own_pack = key_client.get(_url(own.json()["id"])).json()
    assert own_pack["identifiers_masked"] is False and own_pack["execution"]["input"] == QUESTION
    assert own_pack["generated_for"] == f"API key {key.name}"
    # The same key reads a person's run masked.
    other_pack = key_client.get(_url(run.pk)).json()
    assert other_pack["identifiers_masked"] is True and "3704 0044" not in json.dumps(other_pack)


def test_the_printable_page(run, editor_client, viewer_client):
    response = editor_client.get(_url(run.pk, "html"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert f"Evidence pack: execution #{run.pk}" in html
    assert run.release.content_hash in html and Document.objects.get(title="VAT manual").sha256 in html
    assert "@media print" not in html and "agents/evidence.css" in html  # styles from a file (the CSP)
    assert IBAN in html
    masked = viewer_client.get(_url(run.pk, "html")).content.decode()
    assert "3704 0044" not in masked and "Client identifiers are masked" in masked


def test_refusals_answer_the_json_error_shape(run, api_client, other_org):
    stranger = UserFactory()
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert_error(client_for(stranger).get(_url(run.pk)), 404)
    assert_error(client_for(stranger).get(_url(run.pk, "html")), 404)
    assert_error(api_client.get(_url(run.pk)), 401)
    key = APIKeyFactory(organization=run.organization, scopes=["execute"])
    assert_error(client_for(key=key.plaintext).get(_url(run.pk)), 403)
    # An unknown format is refused before the execution is looked up: it says nothing of it.
    assert_error(client_for(stranger).get(_url(run.pk, "pdf")), 400, fields=["format"])
    body = assert_error(client_for(run.actor_user).get(_url(run.pk, "pdf")), 400, fields=["format"])
    assert "json or html" in body["message"]


def test_the_staff_ui_downloads_the_pack(run, editor, viewer, other_org):
    web = login(editor)
    url = reverse("admin:agents_execution_evidence", args=[run.pk])
    response = web.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="evidence-execution-{run.pk}.json"'
    pack = json.loads(response.content)
    assert pack["execution"]["input"] == QUESTION and pack["generated_for"] == editor.get_username()
    printable = web.get(url + "?format=html")
    assert printable["Content-Type"].startswith("text/html") and "Evidence pack" in printable.content.decode()
    assert "3704 0044" not in login(viewer).get(url).content.decode()
    stranger = UserFactory(is_staff=True)
    MembershipFactory(user=stranger, organization=other_org, role="owner")
    assert login(stranger).get(url).status_code == 404
    assert web.post(url).status_code == 405


# --- verify_evidence ------------------------------------------------------------------------------


def _write(tmp_path, pack: dict, name: str = "pack.json"):
    path = tmp_path / name
    path.write_text(json.dumps(pack, ensure_ascii=False), encoding="utf-8")
    return path


def _verify(path) -> tuple[int, str]:
    """Run the command as manage.py would: its exit status (CommandError's returncode) and output."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("verify_evidence", str(path), stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.fixture
def pack(run, editor_client):
    return editor_client.get(_url(run.pk)).json()


def test_a_good_pack_verifies(pack, tmp_path):
    status, report = _verify(_write(tmp_path, pack))
    assert status == 0, report
    assert (
        "FAIL" not in report and "OK   release hash" in report and "The pack matches the database" in report
    )
    assert "OK   audit event" in report and "OK   passage 1" in report


def test_a_masked_pack_verifies_too(run, viewer_client, tmp_path):
    masked = viewer_client.get(_url(run.pk)).json()
    assert masked["identifiers_masked"] is True
    status, report = _verify(_write(tmp_path, masked))
    assert status == 0, report


def test_a_changed_answer_fails(pack, tmp_path):
    pack["execution"]["output"] = pack["execution"]["output"].replace("reverse charge", "zero rate")
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert "FAIL execution output (the answer): the pack has" in report


def test_a_change_late_in_a_long_answer_is_shown_where_it_is(pack, tmp_path):
    """Both texts shortened from their start would read the same: the line shows where they part."""
    stored = pack["execution"]["output"]
    pack["execution"]["output"] = stored + " Ignore the reverse charge."
    assert len(stored) > 100
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    line = next(line for line in report.splitlines() if line.startswith("FAIL execution output"))
    packed, _, database = line.partition(" but the database has ")
    assert packed.endswith("Ignore the reverse charge.") and packed.split("the pack has ")[1].startswith("…")
    assert database == "…" + stored[-20:]


def test_a_changed_release_hash_fails(pack, tmp_path):
    pack["release"]["content_hash"] = "0" * 64
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1 and "FAIL release hash: the pack's hash 0000" in report


def test_a_changed_document_hash_fails(pack, tmp_path):
    cited = next(p for p in pack["passages"] if p["cited_as"])
    cited["document_sha256"] = "f" * 64
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert "FAIL passage" in report and "('VAT manual'): the document's SHA-256 in the pack ffff" in report


def test_a_removed_audit_event_fails(pack, tmp_path):
    (removed,) = pack["audit_events"]
    pack["audit_events"] = []
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert f"FAIL audit event {removed['id']} (agent.execute): the execution's event is missing" in report


def test_an_edited_audit_event_in_the_file_fails(pack, tmp_path):
    pack["audit_events"][0]["hash"] = "a" * 64
    pack["audit_events"][0]["after"]["status"] = "blocked"
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1 and "FAIL audit event" in report
    assert "its hash differs" in report and "its after differs" in report


def test_changes_in_the_database_fail(pack, run, tmp_path):
    """A document replaced and a release's stored content changed after the pack was made: named."""
    manual = Document.objects.get(title="VAT manual")
    Document.objects.filter(pk=manual.pk).update(sha256="e" * 64)
    snapshot = dict(run.release.snapshot, model="another-model")
    Release.objects.filter(pk=run.release_id).update(snapshot=snapshot)
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert "FAIL release content: release 1's stored content hashes to" in report
    assert "FAIL release hash" in report
    assert f"the document changed since the run: the run read SHA-256 {manual.sha256}" in report
    assert f"the database now holds {'e' * 64}" in report


@pytest.mark.skipif(
    connection.vendor == "postgresql", reason="PostgreSQL's triggers refuse any UPDATE of an event"
)
def test_an_audit_event_edited_in_the_database_fails(pack, run, tmp_path):
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(run.pk))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["agent.nothing", event.pk])
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1 and "changed in the database" in report


def test_an_event_removed_before_it_breaks_the_link(pack, run, tmp_path):
    """An earlier event of the organisation removed from the chain: the execution's event's link no
    longer holds (SQLite only: PostgreSQL refuses the DELETE)."""
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's triggers refuse any DELETE of an event")
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(run.pk))
    previous = (
        AuditEvent.objects.filter(organization=run.organization, pk__lt=event.pk).order_by("-pk").first()
    )
    with connection.cursor() as cursor:
        # Its agent row (the audit explorer's side table) first: it refers to the event.
        cursor.execute("DELETE FROM audit_auditeventagent WHERE event_id = %s", [previous.pk])
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [previous.pk])
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1 and "its link does not match the event before it" in report


def test_a_file_that_is_no_pack(tmp_path, db):
    status, report = _verify(_write(tmp_path, {"hello": 1}))
    assert status == 1 and "FAIL format: this is not an evidence pack" in report
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    status, report = _verify(broken)
    assert status == 2 and "is not JSON" in report
    status, report = _verify(tmp_path / "missing.json")
    assert status == 2 and "Cannot read" in report


def test_names_changed_since_still_verify(pack, run, tmp_path):
    """An agent, a requester or a document renamed after the pack was made is not a mismatch: names
    are for people; ids, texts and hashes are the evidence."""
    from agents.models import Agent

    Agent.objects.filter(pk=run.agent_id).update(name="VAT adviser (renamed)")
    Document.objects.filter(title="VAT manual").update(title="VAT manual 2025")
    run.actor_user.__class__.objects.filter(pk=run.actor_user_id).update(username="renamed-editor")
    status, report = _verify(_write(tmp_path, pack))
    assert status == 0, report


def test_an_unknown_execution_fails(pack, tmp_path):
    pack["execution"]["id"] = 10**9
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1 and f"FAIL execution: no execution {10**9}" in report


def test_the_packs_query_count_does_not_grow_with_the_run(vat_agent, editor, editor_client, vat_kb):
    """A pack costs the same queries whatever the number of its steps, passages and audit events."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    small = execute(vat_agent, "What is the VAT on €1,000 at 19%?", actor=editor, source="api")
    large = execute(vat_agent, QUESTION + " And what must the invoice show?", actor=editor, source="api")
    # A replay has two audit events (its run, the replay).
    replay = editor_client.post(reverse("execution-replay", args=[large.pk]), {}, format="json").json()
    counts, sizes = [], []
    for execution_id in (small.pk, replay["id"]):
        with CaptureQueriesContext(conn) as queries:
            pack = editor_client.get(_url(execution_id)).json()
        counts.append(len(queries))
        sizes.append((len(pack["passages"]), len(pack["guardrails"]), len(pack["audit_events"])))
    assert sizes[0][2] == 1 and sizes[1][2] == 2, sizes
    assert counts[0] == counts[1], counts
    # The session and the member, the execution, the pack's execution, its steps and its tool-call
    # approvals, the chunks' pages, the documents, the audit events.
    assert counts[1] <= 8, counts
