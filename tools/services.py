"""Tool services: an organisation's HTTP tools, created, edited and deleted with an audit trail.

Built-in tools (``organization`` null) are provided by Prisma Glow for every organisation and are
read-only here; they are registered from ``tools.builtins``. A tool assigned to an agent cannot be
deleted: unassign or disable it first.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from prisma_glow.audit.services import audit_record, audited_update, snapshot
from prisma_glow.exceptions import ConflictError
from prisma_glow.locking import lock_for_write, retry_on_conflict
from tools.models import Tool, ToolKind, approval_default

EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "slug",
    "description",
    "input_schema",
    "http_method",
    "url_template",
    "headers",
    "secret_headers",
    "timeout_seconds",
    "max_response_bytes",
    "is_enabled",
    "inside_firm",
    "read_only",
    "requires_approval",
)

BUILTIN_READ_ONLY = (
    "Built-in tools are provided by Prisma Glow and are read-only; create an HTTP tool instead."
)


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Unknown tool field(s): {', '.join(unknown)}")


def _secret_headers_text(value: Any) -> str:
    """Secret headers arrive as a dict of strings and are stored as encrypted JSON."""
    if value in (None, "", {}):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError({"secret_headers": "Secret headers must be a JSON object of strings."})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError({"secret_headers": "Secret headers must be a JSON object of strings."})
    return json.dumps(value, sort_keys=True)


def _unique_slug(organization, base: str, *, exclude_pk=None) -> str:
    base = (slugify(base) or "tool")[:70]
    taken = set(
        Tool.objects.filter(Q(organization=organization) | Q(organization__isnull=True))
        .exclude(pk=exclude_pk)
        .filter(slug__startswith=base)
        .values_list("slug", flat=True)
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


def _validate(tool: Tool) -> None:
    """Field errors first (400), then clashes with other tools (409: a taken name or slug, a built-in
    tool's slug), then the model's constraints."""
    tool.full_clean(validate_unique=False, validate_constraints=False)
    conflicts: dict[str, list[str]] = {}
    same_org = Tool.objects.filter(organization=tool.organization).exclude(pk=tool.pk)
    if tool.name and same_org.filter(name__iexact=tool.name).exists():
        conflicts["name"] = [f"A tool named '{tool.name}' already exists in this organisation."]
    if tool.slug and same_org.filter(slug=tool.slug).exists():
        conflicts["slug"] = [f"A tool with the slug '{tool.slug}' already exists in this organisation."]
    elif (
        tool.slug
        and Tool.objects.filter(organization__isnull=True, slug=tool.slug).exclude(pk=tool.pk).exists()
    ):
        conflicts["slug"] = [f"'{tool.slug}' is the slug of a built-in tool; choose another."]
    if conflicts:
        raise ConflictError(conflicts)
    tool.validate_unique()
    tool.validate_constraints()


@retry_on_conflict
@transaction.atomic
def tool_create(
    *,
    organization,
    actor,
    name: str,
    url_template: str,
    slug: str = "",
    kind: str = ToolKind.HTTP,
    **fields: Any,
) -> Tool:
    """Create an organisation's HTTP tool (its input schema is checked as a JSON Schema). Unless
    ``requires_approval`` is given, it follows the one rule (``tools.models.approval_default``): each
    call waits for a person unless the tool is marked ``read_only``."""
    _check_fields(fields)
    if fields.get("requires_approval") is None:
        fields["requires_approval"] = approval_default(kind=kind, read_only=bool(fields.get("read_only")))
    lock_for_write(organization=organization)
    if kind != ToolKind.HTTP:
        raise ValidationError(
            {"kind": "An organisation's tools are HTTP tools; built-in tools are provided."}
        )
    if "secret_headers" in fields:
        fields["secret_headers"] = _secret_headers_text(fields["secret_headers"])
    tool = Tool(
        organization=organization,
        name=name,
        slug=slug or _unique_slug(organization, name),
        kind=ToolKind.HTTP,
        url_template=url_template,
        **fields,
    )
    _validate(tool)
    tool.save()
    audit_record(organization=organization, action="tool.create", actor=actor, obj=tool, after=snapshot(tool))
    return tool


@retry_on_conflict
@transaction.atomic
def tool_update(*, tool: Tool, actor, **fields: Any) -> Tool:
    """Edit an organisation's tool. Built-in tools raise ``PermissionDenied``."""
    _check_fields(fields)
    if tool.organization_id is None:
        raise PermissionDenied(BUILTIN_READ_ONLY)
    lock_for_write(organization=tool.organization_id)
    tool = Tool.objects.select_for_update(of=("self",)).select_related("organization").get(pk=tool.pk)
    if "secret_headers" in fields:
        fields["secret_headers"] = _secret_headers_text(fields["secret_headers"])

    def validate(tool: Tool) -> None:
        if not tool.slug:
            tool.slug = _unique_slug(tool.organization, tool.name, exclude_pk=tool.pk)
        _validate(tool)

    return audited_update(
        tool,
        organization=tool.organization,
        actor=actor,
        action="tool.update",
        fields=fields,
        validate=validate,
    )


@retry_on_conflict
@transaction.atomic
def tool_delete(*, tool: Tool, actor) -> None:
    """Delete an organisation's tool that no agent uses (``ConflictError`` otherwise)."""
    if tool.organization_id is None:
        raise PermissionDenied(BUILTIN_READ_ONLY)
    lock_for_write(organization=tool.organization_id)
    in_use = tool.assignments.count()
    if in_use:
        raise ConflictError(
            f"The tool '{tool.name}' is assigned to {in_use} agent(s); unassign it (or disable it) first."
        )
    audit_record(
        organization=tool.organization,
        action="tool.delete",
        actor=actor,
        obj=tool,
        before=snapshot(tool),
    )
    tool.delete()
