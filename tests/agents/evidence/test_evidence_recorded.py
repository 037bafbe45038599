"""What the run recorded at run time, and what the pack and ``verify_evidence`` make of it: the release
and the texts' SHA-256 in the run's hash-chained event, the tool-call approvals, and each passage's
document SHA-256 as the run read it (the review findings of issue 17 on the evidence pack)."""

from __future__ import annotations

import hashlib

import pytest

from agents.models import Execution, ExecutionStep, ToolApproval
from agents.runtime import execute
from knowledge.models import Document
from prisma_glow.audit.models import AuditEvent
from prisma_glow.audit.services import audit_record
from tests.agents.evidence.conftest import QUESTION
from tests.agents.evidence.test_evidence import _url, _verify, _write
from tests.agents.runtime.test_openai_provider import remote  # noqa: F401 (the fixture)
from tests.agents.runtime.test_tool_approval import (  # noqa: F401 (fixtures)
    CALL,
    _pause,
    immediate_tasks,
    paying_agent,
    payments,
)
from tests.conftest import client_for
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def run(vat_agent, editor):
    execution = execute(vat_agent, QUESTION, actor=editor, source="api")
    assert execution.status == "completed", execution.error
    return execution


# --- The release and the texts, recorded in the run's event ------------------------------------------


def test_the_run_records_its_texts_sha256_in_its_event(run):
    event = AuditEvent.objects.get(action="agent.execute", object_id=str(run.pk))
    assert event.after["input_sha256"] == _sha(QUESTION)
    assert event.after["output_sha256"] == _sha(run.output)
    assert event.after["release"] == 1 and event.after["release_hash"] == run.release.content_hash


def test_a_release_rewritten_in_the_database_fails(run, second_release, editor_client, tmp_path):
    """The execution's row pointed at another release, then a pack made from the rewritten row: the
    pack agrees with the rows, the run's event does not (the executions table is not append-only on
    either database, so this works on PostgreSQL too)."""
    Execution.objects.filter(pk=run.pk).update(release=second_release)
    pack = editor_client.get(_url(run.pk)).json()
    assert pack["release"]["number"] == 2
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert (
        f"FAIL run record release: the execution's row names release 2 ({second_release.content_hash}) "
        f"but its run recorded release 1 ({run.release.content_hash})"
    ) in report
    assert "(the execution's release was changed in the database)" in report


@pytest.mark.parametrize("client", ["editor_client", "viewer_client"])
def test_an_answer_rewritten_in_the_database_fails_even_in_a_masked_pack(run, client, request, tmp_path):
    Execution.objects.filter(pk=run.pk).update(output="Zero rate applies. [1]")
    pack = request.getfixturevalue(client).get(_url(run.pk)).json()
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert (
        f"FAIL run record output (the answer): the execution's output hashes to {_sha('Zero rate applies. [1]')}, "
        f"not to the SHA-256 its run recorded ({_sha(run.output)}"
    ) in report
    assert "OK   run record input (the input)" in report


def test_a_good_pack_checks_the_recorded_release_and_texts(run, editor_client, viewer_client, tmp_path):
    for client in (editor_client, viewer_client):
        status, report = _verify(_write(tmp_path, client.get(_url(run.pk)).json()))
        assert status == 0, report
        assert f"OK   run record release: the run recorded release 1 ({run.release.content_hash})" in report
        assert f"OK   run record output (the answer): SHA-256 {_sha(run.output)}" in report


def test_an_older_run_without_the_hashes_says_not_recorded(vat_agent, editor, editor_client, tmp_path):
    """A run recorded before its event held the texts' SHA-256: not a failure, said as such."""
    execution = ExecutionFactory(agent=vat_agent, actor_user=editor)
    audit_record(
        organization=vat_agent.organization,
        action="agent.execute",
        actor=editor,
        obj=execution,
        after={"agent": vat_agent.pk, "release": None, "release_hash": None, "status": "completed"},
    )
    status, report = _verify(_write(tmp_path, editor_client.get(_url(execution.pk)).json()))
    assert status == 0, report
    assert "OK   run record input (the input): not recorded" in report
    assert "OK   run record output (the answer): not recorded" in report


# --- Tool-call approvals --------------------------------------------------------------------------


@pytest.fixture
def approved(paying_agent, editor, django_capture_on_commit_callbacks):  # noqa: F811
    """A run that paused for the payments tool's approval, approved with edited arguments."""
    agent = paying_agent[0]
    body = _pause(agent, editor)
    approval = ToolApproval.objects.get(execution_id=body["id"])
    edited = {**CALL, "amount": "90.00"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(editor).post(
            f"/api/v1/tool-approvals/{approval.pk}/approve/", {"arguments": edited}, format="json"
        )
    assert response.status_code == 200, response.content
    execution = Execution.objects.get(pk=body["id"])
    assert execution.status == "completed", execution.error
    approval.refresh_from_db()
    return execution, approval, edited


def test_the_pack_holds_the_approvals_their_steps_and_events(approved, editor, tmp_path):
    execution, approval, edited = approved
    pack = client_for(editor).get(_url(execution.pk)).json()
    (entry,) = pack["approvals"]
    assert entry["id"] == approval.pk and entry["status"] == "approved" and entry["name"] == "Payments"
    assert entry["decided_by"] == editor.pk and entry["decided_by_label"] == editor.get_username()
    assert entry["decided_at"] and entry["arguments_asked"] == CALL and entry["arguments_approved"] == edited
    kinds = [(c["kind"], c["status"]) for c in pack["tool_calls"]]
    assert ("approval", "ok") in kinds and ("tool_call", "ok") in kinds and len(kinds) >= 3
    actions = [e["action"] for e in pack["audit_events"]]
    assert actions == ["tool_approval.request", "tool_approval.approve", "agent.execute"]
    status, report = _verify(_write(tmp_path, pack))
    assert status == 0, report
    assert "OK   approvals: 1 match" in report and "(tool_approval.approve)" in report
    page = client_for(editor).get(_url(execution.pk, "html")).content.decode()
    assert "Tool-call approvals (1)" in page and "90.00" in page


def test_approvals_changed_in_the_file_or_removed_fail(approved, editor, tmp_path):
    execution, approval, _ = approved
    pack = client_for(editor).get(_url(execution.pk)).json()
    pack["approvals"][0]["status"] = "refused"
    pack["approvals"][0]["arguments_approved"] = CALL
    pack["audit_events"] = [e for e in pack["audit_events"] if e["action"] != "tool_approval.approve"]
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert "FAIL approvals 1 (Payments): differs from the trace in arguments_approved, status" in report
    assert "(tool_approval.approve): the execution's event is missing from the pack" in report


def test_a_masked_pack_masks_the_approvals_arguments(approved, viewer, tmp_path):
    execution, _, _ = approved
    pack = client_for(viewer).get(_url(execution.pk)).json()
    assert pack["identifiers_masked"] is True
    assert CALL["iban"] not in str(pack["approvals"]) and CALL["iban"] not in str(pack["tool_calls"])
    status, report = _verify(_write(tmp_path, pack))
    assert status == 0, report


# --- Each passage's document SHA-256 as the run read it -------------------------------------------


def test_the_run_records_each_passages_document_sha256(run, editor_client):
    manual = Document.objects.get(title="VAT manual")
    passages = ExecutionStep.objects.get(execution=run, kind="retrieval").output["passages"]
    assert passages and all(p["document_sha256"] for p in passages)
    assert {p["document_sha256"] for p in passages if p["document_id"] == manual.pk} == {manual.sha256}
    pack = editor_client.get(_url(run.pk)).json()
    assert all(p["document_sha256_recorded"] for p in pack["passages"])


def test_a_document_changed_since_the_run_is_named_even_in_a_later_pack(run, editor_client, tmp_path):
    manual = Document.objects.get(title="VAT manual")
    Document.objects.filter(pk=manual.pk).update(sha256="d" * 64)
    pack = editor_client.get(_url(run.pk)).json()
    cited = next(p for p in pack["passages"] if p["document_id"] == manual.pk)
    assert cited["document_sha256"] == manual.sha256 and cited["document_sha256_now"] == "d" * 64
    status, report = _verify(_write(tmp_path, pack))
    assert status == 1
    assert (
        f"the document changed since the run: the run read SHA-256 {manual.sha256}, the database now "
        f"holds {'d' * 64}"
    ) in report


def test_an_older_run_falls_back_to_the_current_hash(run, editor_client, tmp_path):
    step = ExecutionStep.objects.get(execution=run, kind="retrieval")
    output = dict(step.output)
    output["passages"] = [{k: v for k, v in p.items() if k != "document_sha256"} for p in output["passages"]]
    ExecutionStep.objects.filter(pk=step.pk).update(output=output)
    pack = editor_client.get(_url(run.pk)).json()
    manual = Document.objects.get(title="VAT manual")
    cited = next(p for p in pack["passages"] if p["document_id"] == manual.pk)
    assert cited["document_sha256"] == manual.sha256 and cited["document_sha256_recorded"] is False
    status, report = _verify(_write(tmp_path, pack))
    assert status == 0, report
    assert "(the current one: the run did not record it)" in report
