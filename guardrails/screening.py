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

Knowledge does not import this module: it offers a screening hook (``knowledge.screening``), and
``AgentsConfig.ready()`` registers ``SCREENER`` there. The retrieval stage's check
(``checks.prompt_injection``) reads stored screenings with ``stored_signals`` directly.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from guardrails.checks import normalize, prompt_injection

logger = logging.getLogger(__name__)

INJECTION = "prompt_injection"


def fingerprint(files: Iterable[Path]) -> str:
    """A digest of ``files`` and of what else decides a scan: the Unicode tables the normaliser uses
    (``unicodedata``) and the Python version (its regular expressions)."""
    digest = hashlib.sha256(f"{unicodedata.unidata_version} {sys.version_info[:2]}".encode())
    for path in files:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


# Computed when the detector's modules are loaded, not on first use: a process still running the old
# code after the files were replaced must keep reporting the old fingerprint.
_VERSION = fingerprint([prompt_injection.__file__, normalize.__file__])


def version() -> str:
    """The fingerprint of the injection detector this process runs (see ``fingerprint``)."""
    return _VERSION


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@cache
def _default_detector():
    from guardrails.checks import build_check

    return build_check(INJECTION, {})


def screen(text: str) -> dict[str, Any] | None:
    """What is stored with a passage whose text is ``text``; None if the detector failed on it (the
    passage is then scanned live at the retrieval stage, where a failing check is recorded)."""
    try:
        signals = _default_detector().scan(text)
    except Exception:  # noqa: BLE001 - screening is an optimisation: it must never fail an ingestion
        logger.exception("Screening a passage failed; it will be scanned when retrieved")
        return None
    return {"version": version(), "digest": digest(text), INJECTION: signals}


def stored_signals(screening: Mapping[str, Any] | None, text: str, key: str = INJECTION) -> list | None:
    """The stored signals of ``key`` for exactly ``text`` by the current detector, or None."""
    if not screening or screening.get("version") != version() or key not in screening:
        return None
    if screening.get("digest") != digest(text):
        return None
    return [dict(signal) for signal in screening[key]]


def is_current(screening: Mapping[str, Any] | None, text: str) -> bool:
    return stored_signals(screening, text) is not None


def injection_summary(screening: Mapping[str, Any] | None, text: str) -> dict[str, Any] | None:
    """For people: the passage's stored prompt-injection signals combined into the score the check
    compares with its threshold (``{"score", "names"}``), when that score reaches the default
    threshold; None otherwise, and for a screening that does not describe ``text`` by the current
    detector (never screened, or screened by an older detector)."""
    if not (screening or {}).get(INJECTION):  # most passages: nothing stored, no need to check the text
        return None
    signals = stored_signals(screening, text)
    if not signals:
        return None
    score = prompt_injection.combined_score([s["weight"] for s in signals])
    if score < prompt_injection.DEFAULT_THRESHOLD:
        return None
    return {"score": score, "names": [s["name"] for s in signals]}


def has_signals(screening: Mapping[str, Any] | None) -> bool:
    """Whether ``screening`` holds any prompt-injection signal (whatever its weight)."""
    return bool((screening or {}).get(INJECTION))


class _KnowledgeScreener:
    """This detector as knowledge's screening hook (``knowledge.screening.Screener``) sees it."""

    screen = staticmethod(screen)
    is_current = staticmethod(is_current)
    has_signals = staticmethod(has_signals)
    summary = staticmethod(injection_summary)


#: Registered with knowledge by ``AgentsConfig.ready()``.
SCREENER = _KnowledgeScreener()
