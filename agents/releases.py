"""Releases: what runs is a snapshot, not the live rows.

A release (``agents.models.Release``) freezes everything that decides a run of an agent. This module
writes the snapshot from a run configuration (``snapshot_of``), hashes it (``content_hash``) and turns
it back into a run configuration (``configuration_from``), which the runtime runs like any other
(``agents.runtime.loading``).

The snapshot (format 1) is JSON::

    {"format": 1,
     "agent": {"id", "name", "max_tool_rounds", "timeout_seconds"},
     "persona": {every field of the persona version but its agent, author, timestamps and is_active},
     "provider": {"id", "name", "kind", "base_url", "default_model"} or null (the offline engine),
     "model": the model the run asks for, resolved when the release was made,
     "tools": [{"order", "settings", "requires_approval", "tool": {every field of the tool but secrets,
                timestamps, owner}}],
     "knowledge": [{"order", "top_k", "min_score", "knowledge_base": {"id", "name"}}],
     "guardrails": [{"order", "guardrail": {every field of the guardrail but timestamps, owner}}],
     "examples": [{"id", "input", "output"}]}   # approved learning examples, stored redacted

The examples' redaction mappings are kept apart, encrypted (``Release.example_redactions``).
``content_hash`` is the SHA-256 of the canonical JSON (``prisma_glow.audit.canonical``) of
``{"snapshot": …, "example_redactions": […]}``: the same configuration always hashes the same.

What a release does not pin, by design: secrets (the provider's key, a tool's secret headers) and the
provider's prices and time limits come from the live rows, so that rotating a key does not need a
release; the knowledge bases' documents are searched as they are (a run records each passage's
document and that document's SHA-256 as it read it, in its retrieval step, so that its evidence pack
can say when a document changed since); budgets are the organisation's policy. A tool switched off since
(``Tool.is_enabled``) is left out: that switch is the firm's way to stop a tool everywhere at once.
Likewise approval only tightens: a tool call waits for a person when the release says so or the live
rows say so now (``Tool.requires_approval``, or the live assignment's ``AgentTool.requires_approval``).
The provider's connection is pinned: a run is refused when the live provider's ``kind`` or
``base_url`` differ from the snapshot's (repointing it needs a new, approved release).
A run whose release names a provider, tool or knowledge base that no longer exists is refused, saying
which: create a new release.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.db import models

from agents.configuration import RunConfiguration
from agents.exceptions import AgentNotRunnable
from agents.models import AgentKnowledge, AgentTool, ModelProvider, Release
from agents.privacy import parse_mapping
from guardrails.engine import restore
from guardrails.models import Guardrail
from knowledge.models import KnowledgeBase
from personas.models import Persona
from prisma_glow.audit.canonical import canonical_json
from prisma_glow.crypto import EncryptedTextField
from tools.models import Tool

__all__ = [
    "FORMAT",
    "configuration_from",
    "content_hash",
    "resolved_model",
    "snapshot_of",
    "stored_redactions",
]

#: The snapshot's format (``"format"`` in every snapshot).
FORMAT = 1

#: Fields a snapshot never copies: where a row belongs and when it was written.
_LEFT_OUT = {"organization", "agent", "created_by", "created_at", "updated_at", "is_active"}


def _plain_value(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _fields(instance: models.Model) -> dict:
    """``instance``'s own columns as JSON values, without secrets (encrypted columns) and ``_LEFT_OUT``."""
    return {
        field.attname: _plain_value(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
        if field.name not in _LEFT_OUT and not isinstance(field, EncryptedTextField)
    }


def _instance(model: type[models.Model], values: dict) -> models.Model:
    """An unsaved ``model`` instance (its primary key set) from ``_fields``' values; a field the model
    no longer has is ignored, one it has since gained keeps its default."""
    known = {field.attname: field for field in model._meta.concrete_fields}
    kwargs = {}
    for name, value in values.items():
        field = known.get(name)
        if field is None:
            continue
        kwargs[name] = value if isinstance(field, models.JSONField) else field.to_python(value)
    instance = model(**kwargs)
    instance._state.adding = False
    return instance


def resolved_model(configuration) -> str:
    """The model a run of ``configuration`` asks its provider for: the persona's override, else the
    agent's, else the provider's default ("" for the offline engine's own)."""
    provider = configuration.provider_row
    return (
        configuration.persona.model_override
        or configuration.agent.model
        or (provider.default_model if provider else "")
    )


def snapshot_of(configuration, examples) -> tuple[dict, list[dict]]:
    """The snapshot of a run configuration (``agents.selectors.agent_run_configuration``) and the
    redaction mappings of its examples. ``examples``: the approved learning examples as stored,
    (id, input, output, redactions) tuples, oldest first (``agents.selectors.approved_examples``)."""
    agent = configuration.agent
    provider = configuration.provider_row
    tool_settings = {a.tool_id: a for a in agent.tool_assignments.all()}
    guardrail_orders = {a.guardrail_id: a.order for a in agent.guardrail_assignments.all()}
    snapshot = {
        "format": FORMAT,
        "agent": {
            "id": agent.pk,
            "name": agent.name,
            "max_tool_rounds": agent.max_tool_rounds,
            "timeout_seconds": agent.timeout_seconds,
        },
        "persona": _fields(configuration.persona),
        "provider": None
        if provider is None
        else {
            "id": provider.pk,
            "name": provider.name,
            "kind": provider.kind,
            "base_url": provider.base_url,
            "default_model": provider.default_model,
        },
        "model": resolved_model(configuration),
        "tools": [
            {
                "order": tool_settings[tool.pk].order,
                "settings": tool_settings[tool.pk].settings,
                "requires_approval": tool_settings[tool.pk].requires_approval,
                "tool": _fields(tool),
            }
            for tool in configuration.tools
        ],
        "knowledge": [
            {
                "order": assignment.order,
                "top_k": assignment.top_k,
                "min_score": assignment.min_score,
                "knowledge_base": {
                    "id": assignment.knowledge_base_id,
                    "name": assignment.knowledge_base.name,
                },
            }
            for assignment in configuration.knowledge
        ],
        "guardrails": [
            {"order": guardrail_orders[guardrail.pk], "guardrail": _fields(guardrail)}
            for guardrail in configuration.guardrails
        ],
        "examples": [{"id": pk, "input": question, "output": answer} for pk, question, answer, _ in examples],
    }
    mappings = [parse_mapping(raw) for _, _, _, raw in examples]
    return snapshot, mappings


def content_hash(snapshot: dict, example_redactions: list[dict]) -> str:
    """The SHA-256 (hex) of a release's content: its snapshot and its examples' mappings."""
    text = canonical_json({"snapshot": snapshot, "example_redactions": example_redactions})
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def stored_redactions(release: Release) -> list[dict]:
    """The release's example mappings, as ``snapshot_of`` gave them: one per example. A release whose
    examples have no mapping stores none (``example_redactions`` empty): each is then ``{}``, as
    ``snapshot_of`` gave it, so that ``content_hash(release.snapshot, stored_redactions(release))``
    is the release's ``content_hash``."""
    count = len(release.snapshot.get("examples", ()))
    try:
        value = json.loads(release.example_redactions) if release.example_redactions else None
    except ValueError:
        value = None
    if not isinstance(value, list) or len(value) != count:
        return [{} for _ in range(count)]
    return value


def _missing(release: Release, what: str, names: list[str]) -> AgentNotRunnable:
    listed = ", ".join(f"'{name}'" for name in names)
    return AgentNotRunnable(
        f"Release {release.number} of '{release.agent.name}' uses {what} {listed}, which no longer "
        f"exist{'s' if len(names) == 1 else ''}: create a new release."
    )


def _check_connection(release: Release, pinned: dict, row: ModelProvider) -> None:
    """``AgentNotRunnable`` when the live provider row no longer points where the release's snapshot
    says (its kind or base URL changed): repointing a provider is a change of what runs, so it needs a
    new, approved release. Its key, prices and time limits may change without one."""
    changed = [
        label
        for label, field in (("kind", "kind"), ("base URL", "base_url"))
        if field in pinned and pinned[field] != getattr(row, field)
    ]
    if changed:
        raise AgentNotRunnable(
            f"The provider '{pinned['name']}' now points elsewhere ({' and '.join(changed)} changed since "
            f"release {release.number}): create and approve a new release."
        )


def configuration_from(release: Release, agent, budgets: tuple = ()):
    """The run configuration of ``release`` (``agents.selectors.RunConfiguration``, its ``release``
    set): the snapshot's persona, model, tools, knowledge assignments, guardrails and examples, with the
    live agent (its status, organisation), provider row, knowledge bases and tools' secrets. Four
    queries at most. ``AgentNotRunnable`` when the release names a provider, tool or knowledge base
    that no longer exists."""
    snapshot = release.snapshot
    run_agent = copy.copy(agent)
    run_agent.max_tool_rounds = snapshot["agent"]["max_tool_rounds"]
    run_agent.timeout_seconds = snapshot["agent"]["timeout_seconds"]
    run_agent.model = snapshot["model"]
    persona = _instance(Persona, snapshot["persona"])
    persona.agent = run_agent

    provider_row = None
    if snapshot["provider"] is not None:
        provider_row = ModelProvider.objects.filter(
            pk=snapshot["provider"]["id"], organization_id=agent.organization_id
        ).first()
        if provider_row is None:
            raise _missing(release, "the provider", [snapshot["provider"]["name"]])
        _check_connection(release, snapshot["provider"], provider_row)

    tools = []
    if snapshot["tools"]:
        live = {
            row["pk"]: row
            for row in Tool.objects.filter(pk__in=[entry["tool"]["id"] for entry in snapshot["tools"]])
            .filter(models.Q(organization__isnull=True) | models.Q(organization_id=agent.organization_id))
            .annotate(
                assignment_requires_approval=models.Subquery(
                    AgentTool.objects.filter(agent_id=agent.pk, tool_id=models.OuterRef("pk")).values(
                        "requires_approval"
                    )[:1]
                )
            )
            .values(
                "pk",
                "organization_id",
                "is_enabled",
                "secret_headers",
                "requires_approval",
                "assignment_requires_approval",
            )
        }
        gone = [entry["tool"]["name"] for entry in snapshot["tools"] if entry["tool"]["id"] not in live]
        if gone:
            raise _missing(release, "the tool" if len(gone) == 1 else "the tools", gone)
        for entry in snapshot["tools"]:
            row = live[entry["tool"]["id"]]
            if not row["is_enabled"]:
                continue
            tool = _instance(Tool, entry["tool"])
            tool.organization_id = row["organization_id"]
            # Approval only tightens: a call waits for a person when the release says so (the
            # assignment's setting weighed against the tool's, ``Tool.needs_approval``) or the live
            # rows say so now (the live assignment's setting, else the live tool's).
            live_tool = Tool(requires_approval=row["requires_approval"])
            tool.assignment_requires_approval = tool.needs_approval(
                entry.get("requires_approval")
            ) or live_tool.needs_approval(row["assignment_requires_approval"])
            tool.secret_headers = row["secret_headers"]
            tools.append(tool)

    knowledge = []
    if snapshot["knowledge"]:
        bases = KnowledgeBase.objects.in_bulk(
            [entry["knowledge_base"]["id"] for entry in snapshot["knowledge"]]
        )
        bases = {pk: kb for pk, kb in bases.items() if kb.organization_id == agent.organization_id}
        gone = [
            e["knowledge_base"]["name"]
            for e in snapshot["knowledge"]
            if e["knowledge_base"]["id"] not in bases
        ]
        if gone:
            raise _missing(release, "the knowledge base" if len(gone) == 1 else "the knowledge bases", gone)
        for entry in snapshot["knowledge"]:
            assignment = AgentKnowledge(
                agent=run_agent,
                knowledge_base=bases[entry["knowledge_base"]["id"]],
                order=entry["order"],
                top_k=entry["top_k"],
                min_score=entry["min_score"],
                enabled=True,
            )
            knowledge.append(assignment)

    guardrails = []
    for entry in snapshot["guardrails"]:
        guardrail = _instance(Guardrail, entry["guardrail"])
        guardrail.organization_id = agent.organization_id
        guardrails.append(guardrail)
    mappings = stored_redactions(release)
    examples = tuple(
        (restore(entry["input"], mapping), restore(entry["output"], mapping))
        for entry, mapping in zip(snapshot["examples"], mappings, strict=True)
    )
    return RunConfiguration(
        run_agent,
        persona,
        provider_row,
        tuple(tools),
        tuple(knowledge),
        tuple(guardrails),
        examples,
        budgets=budgets,
        release=release,
    )
