"""Helpers for the guardrail tests: guardrails as plain mappings, so most tests need no database."""

from __future__ import annotations

import itertools

import pytest

from guardrails.checks import build_check

_ids = itertools.count(1)


def spec(kind: str, action: str = "block", config: dict | None = None, **extra) -> dict:
    """A guardrail as ``evaluate`` accepts it (the same keys as the model)."""
    number = next(_ids)
    return {"id": number, "name": extra.pop("name", f"{kind} {number}"), "kind": kind, "action": action,
            "config": config or {}, **extra}  # fmt: skip


def run(
    kind: str, text: str, config: dict | None = None, *, stage: str = "input", context: dict | None = None
):
    """Run one check of ``kind`` directly and return its ``Finding``."""
    return build_check(kind, config or {}).run(text, stage=stage, context=context or {})


@pytest.fixture
def pii():
    return build_check("pii", {})
