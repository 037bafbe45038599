"""Screening knowledge passages once, when they are stored, instead of on every run that retrieves them.

The prompt-injection detector is the costliest check an agent run makes: every retrieved passage is
scanned at the retrieval stage, and a popular passage is retrieved by run after run. Its scan with
the default settings (``decode_base64`` on, no extra phrases) does not depend on the guardrail's
threshold or action, so ingestion stores it with each chunk (``Chunk.screening``)::

    {"version": "<detector fingerprint>", "digest": "<digest of the text>", "prompt_injection": [signals]}

At the retrieval stage the check uses the stored signals only when they provably describe the same
text scanned by the same detector: the digest must match the text being checked (so a passage
changed since, or a text that is not the stored chunk, is scanned afresh) and the version must be
the fingerprint of the detector's current source (so any change to the detector invalidates every
stored result at once, without anyone having to remember to bump a number). Anything else — no
screening, an older detector, other settings — falls back to scanning the text, so results never
differ from a live scan. ``manage.py screen_chunks`` (re)screens what is missing or stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

INJECTION = "prompt_injection"


@cache
def version() -> str:
    """The fingerprint of the injection detector: its source and its normaliser's."""
    from guardrails.checks import normalize, prompt_injection

    digest = hashlib.sha256()
    for module in (prompt_injection, normalize):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@cache
def _default_detector():
    from guardrails.checks import build_check

    return build_check(INJECTION, {})


def screen(text: str) -> dict[str, Any]:
    """What is stored with a passage whose text is ``text``."""
    return {"version": version(), "digest": digest(text), INJECTION: _default_detector().scan(text)}


def stored_signals(screening: Mapping[str, Any] | None, text: str, key: str = INJECTION) -> list | None:
    """The stored signals of ``key`` for exactly ``text`` by the current detector, or None."""
    if not screening or screening.get("version") != version() or key not in screening:
        return None
    if screening.get("digest") != digest(text):
        return None
    return [dict(signal) for signal in screening[key]]


def is_current(screening: Mapping[str, Any] | None, text: str) -> bool:
    return stored_signals(screening, text) is not None


def injection_summary(screening: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """For people: the stored prompt-injection signals of a passage, combined into the score the
    check compares with its threshold (``{"score", "names"}``), or None when nothing was found (or
    the passage was never screened)."""
    from guardrails.checks.prompt_injection import combined_score

    signals = (screening or {}).get(INJECTION) or []
    if not signals:
        return None
    return {"score": combined_score([s["weight"] for s in signals]), "names": [s["name"] for s in signals]}
