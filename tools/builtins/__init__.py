"""The built-in tools: one module each, every one with ``SLUG``, ``NAME``, ``DESCRIPTION``,
``INPUT_SCHEMA`` (JSON Schema of the arguments) and ``run(arguments) -> dict``.

A ``Tool`` row with ``organization=None``, ``kind="builtin"`` and ``builtin_key`` = the slug exists
for each in every database (``sync_builtin_tools``, run after every ``migrate``), so fixtures, the
admin and ``seed_demo`` assign them by slug.
"""

from __future__ import annotations

from types import ModuleType

from tools.builtins import (
    audit_sample_size,
    business_days,
    currency,
    id_validator,
    progressive_tax,
    vat_calculator,
)
from tools.builtins._common import ToolError

BUILTIN_MODULES: dict[str, ModuleType] = {
    module.SLUG: module
    for module in (
        vat_calculator,
        progressive_tax,
        business_days,
        id_validator,
        currency,
        audit_sample_size,
    )
}

#: The slugs of the built-in tools, e.g. for ``Tool.objects.get(organization=None, slug=...)``.
BUILTIN_TOOL_SLUGS: tuple[str, ...] = tuple(BUILTIN_MODULES)

VAT_CALCULATOR = vat_calculator.SLUG
PROGRESSIVE_TAX = progressive_tax.SLUG
BUSINESS_DAY_DEADLINE = business_days.SLUG
VAT_IBAN_VALIDATOR = id_validator.SLUG
CURRENCY_CALCULATOR = currency.SLUG
AUDIT_SAMPLE_SIZE = audit_sample_size.SLUG


def get_builtin(key: str) -> ModuleType:
    """The implementation module for ``key`` (a ``Tool.builtin_key``); KeyError when unknown."""
    return BUILTIN_MODULES[key]


def sync_builtin_tools(using: str = "default") -> int:
    """Create or update the shared built-in Tool rows so they match the code; returns rows changed.

    Idempotent: rows already in sync are left untouched (no ``updated_at`` churn).
    """
    from tools.models import Tool, ToolKind

    changed = 0
    existing = {t.slug: t for t in Tool.objects.using(using).filter(organization__isnull=True)}
    for slug, module in BUILTIN_MODULES.items():
        wanted = {
            "name": module.NAME,
            "kind": ToolKind.BUILTIN,
            "description": module.DESCRIPTION,
            "input_schema": module.INPUT_SCHEMA,
            "builtin_key": slug,
            "url_template": "",
            # Built-in tools run in-process: they receive the values behind a run's placeholders.
            "inside_firm": True,
        }
        tool = existing.get(slug)
        if tool is None:
            Tool.objects.using(using).create(organization=None, slug=slug, **wanted)
            changed += 1
        elif any(getattr(tool, field) != value for field, value in wanted.items()):
            for field, value in wanted.items():
                setattr(tool, field, value)
            tool.save(using=using)
            changed += 1
    return changed


__all__ = ["BUILTIN_MODULES", "BUILTIN_TOOL_SLUGS", "ToolError", "get_builtin", "sync_builtin_tools"]
