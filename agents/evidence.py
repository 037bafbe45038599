"""The evidence pack of an execution: what ran, on what, what it said, and the audit trail that proves it.

``evidence_pack`` writes one JSON document (``FORMAT`` / ``FORMAT_VERSION``) from the database:

- ``release``: the release the run ran, with its number and content hash, or ``"draft"`` (a test run of
  the live configuration, or a run recorded before releases existed);
- ``execution``: the agent, persona version, requester, status, source, as-of day, input, answer and
  error; ``provider``: kind, name and model; ``usage``: tokens, cost and latency;
- ``passages``: every passage the run retrieved, with its document, page and the document's SHA-256
  as the run read it (recorded in the retrieval step; ``knowledge.Document.sha256`` now for a run
  recorded before that) and as it is now, and the citation number the answer gave it (``cited_as``);
- ``guardrails``: each guardrail verdict of the trace; ``tool_calls``: each tool call with its
  arguments and result, and each step of a call's approval; ``approvals``: the run's tool-call
  approvals (status, who decided when and why, the arguments as asked and as approved);
- ``audit_events``: the audit log's events about the execution and its approvals, with ``hash``,
  ``prev_hash`` and ``hash_version`` (``prisma_glow.audit``), so that their place in the
  organisation's chain can be checked.

Client identifiers are masked unless the requester may see them — the execution's own rule
(``agents.privacy``: the detail endpoint's answer), so a pack never shows more than the execution's page
would (``identifiers_masked`` says which). ``verify_pack`` checks a pack against the database
(``manage.py verify_evidence``): the execution and its recorded fields, rebuilt with the same masking
and compared; the release's stored content, hashed again (``agents.releases.content_hash``); the
release and the texts' SHA-256 the run recorded in its hash-chained ``agent.execute`` event, against
the pack and the execution's row (a row rewritten in the database since the run is named); each
passage's document SHA-256 against the one the run recorded; each audit event's hash, content and link to the event before it in the
organisation, and that no event of the execution is missing from the pack. A pack with masked
identifiers verifies too: its masked texts are compared with the database's texts masked the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch, Q
from django.utils import timezone

from agents.models import Execution, ExecutionStep, StepKind, ToolApproval
from agents.privacy import shown_data, shown_text
from agents.releases import content_hash, stored_redactions
from agents.runtime.record import text_sha256
from knowledge.models import Chunk, Document
from prisma_glow.audit.models import AuditEvent

#: What a pack says it is, and the version of its layout (a change of layout is a new version).
FORMAT = "prisma-glow-evidence"
FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    """``value`` as the pack's JSON holds it (dates as ISO text, decimals as text), so that a value
    built from the database compares equal to the same value read back from a file."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def evidence_queryset():
    """Executions with what a pack reads (one query each for the steps and the tool-call approvals)."""
    return Execution.objects.select_related(
        "organization", "agent", "persona", "provider", "release", "actor_user", "actor_api_key"
    ).prefetch_related(
        Prefetch("steps", ExecutionStep.objects.order_by("ordinal")),
        Prefetch("tool_approvals", ToolApproval.objects.select_related("decided_by").order_by("pk")),
    )


# --- Parts of the trace ---------------------------------------------------------------------------


def guardrail_verdicts(steps, *, shown) -> list[dict]:
    """Each guardrail step of the trace: the guardrail, the stage, the outcome and what it said."""
    verdicts = []
    for step in steps:
        if step.kind != StepKind.GUARDRAIL:
            continue
        given = step.input if isinstance(step.input, dict) else {}
        verdicts.append(
            {
                "step": step.ordinal,
                "name": step.name,
                "stage": given.get("stage", ""),
                "kind": given.get("kind", ""),
                "action": given.get("action", ""),
                "status": step.status,
                "verdict": shown(step.output),
            }
        )
    return verdicts


def tool_calls(steps, *, shown) -> list[dict]:
    """Each tool call of the trace and each step of a call's approval (requested, decided, expired), in
    order: the tool, its arguments, its result (an approval's decision) and its outcome."""
    calls = []
    for step in steps:
        if step.kind not in (StepKind.TOOL_CALL, StepKind.APPROVAL):
            continue
        given = step.input if isinstance(step.input, dict) else {}
        calls.append(
            {
                "step": step.ordinal,
                "kind": step.kind,
                "name": step.name,
                "status": step.status,
                "arguments": shown(given.get("arguments", given)),
                "result": shown(step.output),
                "duration_ms": step.duration_ms,
            }
        )
    return calls


def tool_approvals(execution: Execution, *, shown) -> list[dict]:
    """The run's tool-call approvals (``agents.models.ToolApproval``), in the order asked: the tool,
    the status, who decided when and why, the arguments as the model asked them and as approved (the
    approver's edit, or the same arguments; none unless approved)."""
    entries = []
    for approval in execution.tool_approvals.all():
        approved = None
        if approval.status == "approved":
            approved = (
                approval.edited_arguments if approval.edited_arguments is not None else approval.arguments
            )
        entries.append(
            {
                "id": approval.pk,
                "tool": approval.tool_id,
                "name": approval.tool_name,
                "status": approval.status,
                "decided_by": approval.decided_by_id,
                "decided_by_label": approval.decided_by.get_username() if approval.decided_by_id else "",
                "decided_at": approval.decided_at,
                "reason": shown(approval.reason),
                "arguments_asked": shown(approval.arguments),
                "arguments_approved": shown(approved),
                "created_at": approval.created_at,
                "expires_at": approval.expires_at,
            }
        )
    return entries


def retrieved_passages(execution: Execution, steps) -> list[dict]:
    """Every passage the run's knowledge searches returned, in order, with its document, page, the
    document's SHA-256 as the run recorded it (``document_sha256``) and as the database holds it now
    (``document_sha256_now``, ``None`` once the document is deleted), and the answer's citation number
    (``cited_as``). A run recorded before the runs kept the hash has none: ``document_sha256`` is then
    the current hash and ``document_sha256_recorded`` is false. Two queries (the chunks' pages, the
    documents)."""
    cited = {
        c.get("chunk_id"): c.get("n")
        for c in execution.citations or []
        if isinstance(c, dict) and c.get("chunk_id") is not None
    }
    found: list[dict] = []
    for step in steps:
        if step.kind != StepKind.RETRIEVAL or not isinstance(step.output, dict):
            continue
        for passage in step.output.get("passages") or []:
            if isinstance(passage, dict):
                found.append(passage)
    chunk_ids = {p.get("chunk_id") for p in found if isinstance(p.get("chunk_id"), int)}
    pages = dict(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", "page")) if chunk_ids else {}
    document_ids = {p.get("document_id") for p in found if isinstance(p.get("document_id"), int)}
    documents = (
        {d.pk: d for d in Document.objects.filter(pk__in=document_ids).only("pk", "title", "sha256")}
        if document_ids
        else {}
    )
    passages = []
    for passage in found:
        document = documents.get(passage.get("document_id"))
        now = document.sha256 if document else None
        at_run = passage.get("document_sha256")
        passages.append(
            {
                "chunk_id": passage.get("chunk_id"),
                "document_id": passage.get("document_id"),
                "document_title": document.title if document else passage.get("document_title", ""),
                "document_sha256": at_run if at_run else now,
                "document_sha256_recorded": bool(at_run),
                "document_sha256_now": now,
                "knowledge_base_id": passage.get("knowledge_base_id"),
                "page": pages.get(passage.get("chunk_id")),
                "citation": passage.get("citation", ""),
                "score": passage.get("score"),
                "cited_as": cited.get(passage.get("chunk_id")),
            }
        )
    return passages


# --- The pack -------------------------------------------------------------------------------------


def _requester(execution: Execution) -> dict:
    if execution.actor_api_key_id:
        return {"api_key": execution.actor_api_key_id, "label": f"API key {execution.actor_api_key.name}"}
    if execution.actor_user_id:
        return {"user": execution.actor_user_id, "label": execution.actor_user.get_username()}
    return {"label": "system"}


def recorded(execution: Execution, *, visible: bool) -> dict:
    """The pack's parts that the execution's record decides, with identifiers shown or masked as
    ``visible`` says: what ``verify_pack`` rebuilds and compares."""
    steps = list(execution.steps.all())

    def shown(value):
        return shown_data(execution, value, visible=visible)

    release = execution.release
    return _plain(
        {
            "release": "draft"
            if release is None
            else {"id": release.pk, "number": release.number, "content_hash": release.content_hash},
            "execution": {
                "id": execution.pk,
                "organization": execution.organization_id,
                "agent": {"id": execution.agent_id, "name": execution.agent.name},
                "persona": None
                if execution.persona_id is None
                else {"id": execution.persona_id, "version": execution.persona.version},
                "requester": _requester(execution),
                "status": execution.status,
                "source": execution.source,
                "is_test": execution.is_test,
                "replay_of": execution.replay_of_id,
                "conversation": execution.conversation_id,
                "turn": execution.turn,
                "as_of": execution.as_of,
                "created_at": execution.created_at,
                "finished_at": execution.finished_at,
                "input": shown_text(execution, execution.input, visible=visible),
                "output": shown_text(execution, execution.output, visible=visible),
                "error": shown_text(execution, execution.error, visible=visible),
            },
            "provider": {
                "id": execution.provider_id,
                "name": execution.provider.name if execution.provider_id else "",
                "kind": execution.provider_kind,
                "model": execution.model,
            },
            "usage": {
                "tokens_in": execution.tokens_in,
                "tokens_out": execution.tokens_out,
                "cost": execution.cost,
                "latency_ms": execution.latency_ms,
            },
            "guardrails": guardrail_verdicts(steps, shown=shown),
            "tool_calls": tool_calls(steps, shown=shown),
            "approvals": tool_approvals(execution, shown=shown),
            "passages": retrieved_passages(execution, steps),
        }
    )


def execution_audit_events(execution: Execution):
    """The audit log's events about ``execution`` (its run, a replay of it…) and about its tool-call
    approvals (requested, approved, refused, expired), in chain order. ``execution`` is read through
    ``evidence_queryset`` (its approvals prefetched)."""
    about = Q(object_type=Execution._meta.label_lower, object_id=str(execution.pk))
    approvals = [str(approval.pk) for approval in execution.tool_approvals.all()]
    if approvals:
        about |= Q(object_type=ToolApproval._meta.label_lower, object_id__in=approvals)
    return AuditEvent.objects.filter(about, organization_id=execution.organization_id).order_by("id")


def _event_entry(event: AuditEvent) -> dict:
    return _plain(
        {
            "id": event.pk,
            "action": event.action,
            "actor": event.actor_label or "system",
            "at": event.at,
            "after": event.after,
            "hash_version": event.hash_version,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
    )


def evidence_pack(*, execution: Execution, visible: bool, generated_for: str = "") -> dict:
    """The evidence pack of ``execution`` (read through ``evidence_queryset``), identifiers in full
    when ``visible`` (``agents.privacy.may_see_identifiers`` of the requester, opened alone), masked
    otherwise. ``generated_for``: who asked (a username, "API key …")."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generated_at": _plain(timezone.now()),
        "generated_for": generated_for,
        "identifiers_masked": not visible,
        "organization": {"id": execution.organization_id, "name": execution.organization.name},
        **recorded(execution, visible=visible),
        "audit_events": [_event_entry(event) for event in execution_audit_events(execution)],
    }


# --- Verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One line of a verification report: what was checked, whether it holds, and in words why not."""

    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}{': ' + self.detail if self.detail else ''}"


#: The execution's fields a pack records, by the name a report gives them.
_FIELDS = {
    "input": "the input",
    "output": "the answer",
    "error": "the error",
    "status": "the status",
    "source": "the source",
    "is_test": "whether it was a test",
    "as_of": "the as-of day",
    "created_at": "when it started",
    "finished_at": "when it finished",
    "agent": "the agent",
    "persona": "the persona version",
    "requester": "the requester",
    "replay_of": "the run it replays",
    "conversation": "the conversation",
    "turn": "the turn",
    "organization": "the organisation",
}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Names and labels a pack shows for people, which may change after the run (an agent, a key or a
#: document renamed): not evidence, so not compared. Ids, texts, numbers and hashes are.
_NAMES = {"name", "label", "document_title"}


def _verifiable(value: Any) -> Any:
    """``value`` without the ``_NAMES`` keys of its objects (one level: the pack's entries are flat)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in _NAMES}
    return value


#: Characters kept before the first difference of two long texts.
_LEAD = 20


def _from_difference(packed: str, stored: str) -> tuple[str, str]:
    """Two texts that differ, each from a little before where they part: two long answers that differ
    late would otherwise read the same when shortened."""
    common = len(os.path.commonprefix([packed, stored]))
    if common <= _LEAD:
        return packed, stored
    start = common - _LEAD
    return "…" + packed[start:], "…" + stored[start:]


def _differs(what: str, packed: Any, stored: Any) -> Check:
    if packed == stored:
        return Check(what, True)
    if isinstance(packed, str) and isinstance(stored, str):
        packed, stored = _from_difference(packed, stored)
    return Check(what, False, f"the pack has {_short(packed)!s} but the database has {_short(stored)!s}")


def verify_pack(pack: Any) -> list[Check]:
    """Check ``pack`` (a decoded evidence pack) against the database; each check says what it compared.
    The pack verifies when every check is ``ok``."""
    if not isinstance(pack, dict) or pack.get("format") != FORMAT:
        return [Check("format", False, f'this is not an evidence pack (no "format": "{FORMAT}")')]
    if pack.get("format_version") != FORMAT_VERSION:
        return [
            Check(
                "format",
                False,
                f"format version {pack.get('format_version')!r} is not one this version reads "
                f"({FORMAT_VERSION})",
            )
        ]
    checks = [Check("format", True, f"{FORMAT} version {FORMAT_VERSION}")]
    packed_execution = pack.get("execution") if isinstance(pack.get("execution"), dict) else {}
    execution_id = packed_execution.get("id")
    execution = evidence_queryset().filter(pk=execution_id).first() if isinstance(execution_id, int) else None
    if execution is None:
        checks.append(Check("execution", False, f"no execution {execution_id!r} in the database"))
        return checks
    checks.append(Check("execution", True, f"execution {execution.pk} of '{execution.agent.name}' exists"))
    masked = pack.get("identifiers_masked")
    if not isinstance(masked, bool):
        checks.append(
            Check("identifiers_masked", False, "the pack does not say whether it masks identifiers")
        )
        return checks
    stored = recorded(execution, visible=not masked)
    for name, label in _FIELDS.items():
        checks.append(
            _differs(
                f"execution {name} ({label})",
                _verifiable(packed_execution.get(name)),
                _verifiable(stored["execution"][name]),
            )
        )
    for section in ("provider", "usage"):
        packed_section = pack.get(section) if isinstance(pack.get(section), dict) else {}
        for name, value in stored[section].items():
            if name not in _NAMES:
                checks.append(_differs(f"{section} {name}", packed_section.get(name), value))
    checks.extend(_release_checks(pack.get("release"), execution))
    checks.extend(_run_event_checks(pack, execution, masked=masked))
    for section in ("guardrails", "tool_calls"):
        checks.extend(_list_checks(section, pack.get(section), stored[section]))
    checks.extend(
        _list_checks("approvals", pack.get("approvals"), stored["approvals"], ignore={"decided_by_label"})
    )
    checks.extend(_passage_checks(pack.get("passages"), stored["passages"]))
    checks.extend(_audit_checks(pack.get("audit_events"), execution))
    return checks


def _release_checks(packed: Any, execution: Execution) -> list[Check]:
    release = execution.release
    if release is None:
        return [_differs("release", packed, "draft")]
    if not isinstance(packed, dict):
        return [_differs("release", packed, f"release {release.number}")]
    checks = [_differs("release number", packed.get("number"), release.number)]
    recomputed = content_hash(release.snapshot, stored_redactions(release))
    if recomputed != release.content_hash:
        checks.append(
            Check(
                "release content",
                False,
                f"release {release.number}'s stored content hashes to {recomputed}, not to its recorded "
                f"hash {release.content_hash} (the release was changed in the database)",
            )
        )
    if packed.get("content_hash") == recomputed:
        checks.append(
            Check("release hash", True, f"release {release.number}'s content hashes to {recomputed}")
        )
    else:
        checks.append(
            Check(
                "release hash",
                False,
                f"the pack's hash {_short(packed.get('content_hash'))} is not the hash of release "
                f"{release.number}'s content ({recomputed})",
            )
        )
    return checks


def _run_event(execution: Execution) -> AuditEvent | None:
    """The run's own ``agent.execute`` event (the last one: a resumed run records it when it ends)."""
    return (
        AuditEvent.objects.filter(
            organization_id=execution.organization_id,
            action="agent.execute",
            object_type=Execution._meta.label_lower,
            object_id=str(execution.pk),
        )
        .order_by("-id")
        .first()
    )


def _run_event_checks(pack: dict, execution: Execution, *, masked: bool) -> list[Check]:
    """What the run recorded in its hash-chained ``agent.execute`` event — the release's number and
    hash, the SHA-256 of its input and answer — against the pack and against the execution's row, so
    that a release or a text rewritten in the database (the pack then made from the rewritten row)
    is named. A masked pack's texts are not the recorded ones: the row's are hashed instead (and the
    pack's masked texts are compared with the row's, masked, above)."""
    event = _run_event(execution)
    if event is None:
        return [Check("run record", False, "the execution has no agent.execute audit event")]
    after = event.after if isinstance(event.after, dict) else {}
    checks = []
    packed = pack.get("release")
    at_run = (
        "draft"
        if after.get("release") is None
        else f"release {after.get('release')} ({after.get('release_hash')})"
    )
    in_pack = (
        f"release {packed.get('number')} ({packed.get('content_hash')})"
        if isinstance(packed, dict)
        else packed
    )
    release = execution.release
    in_row = "draft" if release is None else f"release {release.number} ({release.content_hash})"
    if in_row != at_run:
        checks.append(
            Check(
                "run record release",
                False,
                f"the execution's row names {in_row} but its run recorded {at_run} in audit event "
                f"{event.pk} (the execution's release was changed in the database)",
            )
        )
    elif in_pack != at_run:
        checks.append(
            Check(
                "run record release", False, f"the pack has {_short(in_pack)} but the run recorded {at_run}"
            )
        )
    else:
        checks.append(
            Check("run record release", True, f"the run recorded {at_run} (audit event {event.pk})")
        )
    for field, label in (("input", "the input"), ("output", "the answer")):
        name = f"run record {field} ({label})"
        recorded_hash = after.get(f"{field}_sha256")
        if not recorded_hash:
            checks.append(
                Check(name, True, "not recorded (a run recorded before runs kept their texts' SHA-256)")
            )
            continue
        row_hash = text_sha256(getattr(execution, field))
        if row_hash != recorded_hash:
            checks.append(
                Check(
                    name,
                    False,
                    f"the execution's {field} hashes to {row_hash}, not to the SHA-256 its run recorded "
                    f"({recorded_hash}, audit event {event.pk}): changed in the database",
                )
            )
            continue
        packed_text = (
            (pack.get("execution") or {}).get(field) if isinstance(pack.get("execution"), dict) else None
        )
        if not masked and text_sha256(packed_text if isinstance(packed_text, str) else "") != recorded_hash:
            checks.append(
                Check(
                    name,
                    False,
                    f"the pack's {field} does not hash to the SHA-256 its run recorded ({recorded_hash})",
                )
            )
            continue
        checks.append(Check(name, True, f"SHA-256 {recorded_hash} as the run recorded it"))
    return checks


def _list_checks(section: str, packed: Any, stored: list[dict], *, ignore=frozenset()) -> list[Check]:
    """Each entry of the pack's ``section`` against the database's, field by field but for the
    ``ignore`` ones (names for people)."""
    if not isinstance(packed, list):
        return [Check(section, False, "missing from the pack")]
    checks = []
    if len(packed) != len(stored):
        checks.append(
            Check(section, False, f"the pack lists {len(packed)}, the execution's trace {len(stored)}")
        )
    for index, (mine, theirs) in enumerate(zip(packed, stored, strict=False), start=1):
        name = theirs.get("name", "")
        if isinstance(mine, dict):
            mine = {k: v for k, v in mine.items() if k not in ignore}
        theirs = {k: v for k, v in theirs.items() if k not in ignore}
        if mine != theirs:
            if isinstance(mine, dict):
                fields = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            else:
                fields = ["(not an object)"]
            checks.append(
                Check(f"{section} {index} ({name})", False, f"differs from the trace in {', '.join(fields)}")
            )
    if not checks:
        checks.append(Check(section, True, f"{len(stored)} match the execution's trace"))
    return checks


def _passage_checks(packed: Any, stored: list[dict]) -> list[Check]:
    if not isinstance(packed, list):
        return [Check("passages", False, "missing from the pack")]
    checks = []
    if len(packed) != len(stored):
        checks.append(
            Check("passages", False, f"the pack lists {len(packed)}, the execution's trace {len(stored)}")
        )
    for index, (mine, theirs) in enumerate(zip(packed, stored, strict=False), start=1):
        if not isinstance(mine, dict):
            checks.append(Check(f"passage {index}", False, "not an object"))
            continue
        title = theirs.get("document_title") or f"document {theirs.get('document_id')}"
        name = f"passage {index} ('{title}')"
        checks.append(_document_check(name, mine, theirs))
        others = sorted(
            k
            for k in theirs
            if k not in {"document_sha256", "document_sha256_now", *_NAMES} and mine.get(k) != theirs.get(k)
        )
        if others:
            checks.append(Check(name, False, f"differs from the trace in {', '.join(others)}"))
    return checks


def _document_check(name: str, mine: dict, theirs: dict) -> Check:
    """A passage's document SHA-256: the pack's against the one the run recorded (or, for a run that
    recorded none, the current one), and the document as it is now against what the run read."""
    expected, now = theirs["document_sha256"], theirs["document_sha256_now"]
    if mine.get("document_sha256") != expected:
        return Check(
            name,
            False,
            f"the document's SHA-256 in the pack {_short(mine.get('document_sha256'))} is not the "
            f"{'run' if theirs['document_sha256_recorded'] else 'database'}'s {expected}",
        )
    if now is None:
        return Check(
            name,
            False,
            f"its document {theirs.get('document_id')} no longer exists: its SHA-256 cannot be checked",
        )
    if not theirs["document_sha256_recorded"]:
        return Check(name, True, f"document SHA-256 {now} (the current one: the run did not record it)")
    if now != expected:
        return Check(
            name,
            False,
            f"the document changed since the run: the run read SHA-256 {expected}, the database now holds {now}",
        )
    return Check(name, True, f"document SHA-256 {expected} as the run recorded it")


def _audit_checks(packed: Any, execution: Execution) -> list[Check]:
    if not isinstance(packed, list):
        return [Check("audit events", False, "missing from the pack")]
    stored = {event.pk: event for event in execution_audit_events(execution)}
    checks = []
    packed_ids = [e.get("id") for e in packed if isinstance(e, dict)]
    for event_id, event in stored.items():
        if event_id not in packed_ids:
            checks.append(
                Check(
                    f"audit event {event_id} ({event.action})",
                    False,
                    "the execution's event is missing from the pack (removed from the file)",
                )
            )
    for entry in packed:
        if not isinstance(entry, dict):
            checks.append(Check("audit event", False, "an entry is not an object"))
            continue
        event = stored.get(entry.get("id"))
        name = f"audit event {entry.get('id')} ({entry.get('action')})"
        if event is None:
            checks.append(Check(name, False, "no such event of this execution in the database"))
            continue
        problems = [
            f"its {field} differs"
            for field, value in _event_entry(event).items()
            if entry.get(field) != value
        ]
        try:
            intact = event.compute_hash() == event.hash
        except ValueError:
            intact = False
        if not intact:
            problems.append("the database's event no longer matches its hash (changed in the database)")
        previous = (
            AuditEvent.objects.filter(organization_id=event.organization_id, pk__lt=event.pk)
            .order_by("-pk")
            .values_list("hash", flat=True)
            .first()
            or ""
        )
        if event.prev_hash != previous:
            problems.append(
                "its link does not match the event before it in the organisation's chain (an event "
                "removed, inserted or changed)"
            )
        if problems:
            checks.append(Check(name, False, "; ".join(problems)))
        else:
            checks.append(
                Check(name, True, f"hash {event.hash[:16]}… linked to {event.prev_hash[:16] or 'the start'}…")
            )
    return checks
