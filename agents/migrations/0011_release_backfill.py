"""Release 1 for every agent that is active today, of its current configuration, activated: API runs
keep running exactly what they ran before releases existed.

Frozen: this is format 1 of ``agents.releases.snapshot_of`` and ``content_hash`` as they were written
when releases were introduced, copied here so that later changes to the application cannot change
what this migration does. ``tests/agents/test_release_backfill.py`` checked, when it was written, that
both give the same snapshot and hash.
"""

import hashlib
import json
from decimal import Decimal
from json.encoder import encode_basestring_ascii

from django.db import migrations

LEFT_OUT = {"organization", "agent", "created_by", "created_at", "updated_at", "is_active"}
MAX_EXAMPLES = 5


def _number(value):
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        value = Decimal(repr(value))
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _canonical(value, out):
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, (int, float, Decimal)):
        out.append(_number(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(sorted(value.items())):
            if index:
                out.append(",")
            out.append(encode_basestring_ascii(key))
            out.append(":")
            _canonical(item, out)
        out.append("}")
    else:
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _canonical(item, out)
        out.append("]")


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _fields(instance):
    return {
        field.attname: _plain(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
        if field.name not in LEFT_OUT and type(field).__name__ != "EncryptedTextField"
    }


def _mapping(raw):
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def backfill(apps, schema_editor):
    Agent = apps.get_model("agents", "Agent")
    AgentTool = apps.get_model("agents", "AgentTool")
    AgentKnowledge = apps.get_model("agents", "AgentKnowledge")
    AgentGuardrail = apps.get_model("agents", "AgentGuardrail")
    LearningExample = apps.get_model("agents", "LearningExample")
    ModelProvider = apps.get_model("agents", "ModelProvider")
    Release = apps.get_model("agents", "Release")
    Persona = apps.get_model("personas", "Persona")

    for agent in Agent.objects.filter(status="active", active_release__isnull=True).order_by("pk"):
        persona = Persona.objects.filter(agent=agent, is_active=True).order_by("-version").first()
        if persona is None:
            continue
        org = agent.organization_id
        provider = agent.provider
        if provider is None:
            provider = ModelProvider.objects.filter(organization_id=org, is_default=True).first()
        tools = [
            a
            for a in AgentTool.objects.filter(agent=agent, enabled=True, tool__is_enabled=True)
            .select_related("tool")
            .order_by("order", "id")
            if a.tool.organization_id in (None, org)
        ]
        knowledge = [
            a
            for a in AgentKnowledge.objects.filter(agent=agent, enabled=True)
            .select_related("knowledge_base")
            .order_by("order", "id")
            if a.knowledge_base.organization_id == org
        ]
        guardrails = [
            a
            for a in AgentGuardrail.objects.filter(agent=agent, enabled=True, guardrail__enabled=True)
            .select_related("guardrail")
            .order_by("order", "id")
            if a.guardrail.organization_id == org
        ]
        examples = list(
            LearningExample.objects.filter(agent=agent, status="approved")
            .order_by("-created_at", "-id")
            .values_list("pk", "input", "output", "redactions")[:MAX_EXAMPLES]
        )
        examples.reverse()
        snapshot = {
            "format": 1,
            "agent": {
                "id": agent.pk,
                "name": agent.name,
                "max_tool_rounds": agent.max_tool_rounds,
                "timeout_seconds": agent.timeout_seconds,
            },
            "persona": _fields(persona),
            "provider": None
            if provider is None
            else {
                "id": provider.pk,
                "name": provider.name,
                "kind": provider.kind,
                "base_url": provider.base_url,
                "default_model": provider.default_model,
            },
            "model": persona.model_override or agent.model or (provider.default_model if provider else ""),
            "tools": [
                {
                    "order": a.order,
                    "settings": a.settings,
                    "requires_approval": a.requires_approval,
                    "tool": _fields(a.tool),
                }
                for a in tools
            ],
            "knowledge": [
                {
                    "order": a.order,
                    "top_k": a.top_k,
                    "min_score": a.min_score,
                    "knowledge_base": {"id": a.knowledge_base_id, "name": a.knowledge_base.name},
                }
                for a in knowledge
            ],
            "guardrails": [{"order": a.order, "guardrail": _fields(a.guardrail)} for a in guardrails],
            "examples": [{"id": pk, "input": q, "output": o} for pk, q, o, _ in examples],
        }
        redactions = [_mapping(raw) for _, _, _, raw in examples]
        out = []
        _canonical({"snapshot": snapshot, "example_redactions": redactions}, out)
        release = Release.objects.create(
            organization_id=org,
            agent=agent,
            number=1,
            persona=persona,
            snapshot=snapshot,
            example_redactions=json.dumps(redactions) if any(redactions) else "",
            content_hash=hashlib.sha256("".join(out).encode("ascii")).hexdigest(),
            notes="Release 1: the configuration the agent was running when releases were introduced.",
        )
        Agent.objects.filter(pk=agent.pk).update(active_release=release)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0010_releases"),
        ("guardrails", "0001_initial"),
        ("knowledge", "0012_search_function_from_rules"),
        ("personas", "0001_initial"),
        ("tools", "0004_tool_approval"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
