"""The screening hook: how knowledge screens passages when they are stored, without knowing who screens.

Ingestion stores a screening with each chunk (``Chunk.screening``) so that the retrieval stage of an
agent run can reuse it instead of scanning the passage on every run. What a screening holds, and
whether a stored one still describes a passage, is the screener's business: knowledge stores it,
asks the screener about it, and shows its one-line summary to staff. The agents app, which composes
the apps below it, registers guardrails' prompt-injection screener here from its ``AppConfig.ready()``
(``guardrails.screening.SCREENER``), so that knowledge and guardrails never import each other.

With nothing registered (knowledge installed without guardrails) chunks are stored unscreened
(``screening`` None), ``screening_is_current`` is False, ``screening_summary`` is None, and
``manage.py screen_chunks`` refuses to run; an agent run's retrieval stage scans such passages live,
as it does any passage without a current screening, so the verdicts are the same, only slower.

The same way, the chunker asks a registered ``IdentifierFinder`` (guardrails' PII detector,
``guardrails.identifiers.FINDER``) where a text's client identifiers are, so that it never cuts one in
two; with none registered, chunks are cut without regard to identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Screener(Protocol):
    """What a screener offers knowledge (``guardrails.screening.SCREENER`` is the one in use)."""

    def screen(self, text: str) -> dict[str, Any] | None:
        """The screening to store with a passage whose text is ``text``; None if it failed."""

    def is_current(self, screening: Mapping[str, Any] | None, text: str) -> bool:
        """Whether ``screening`` describes exactly ``text`` as the screener in use would screen it."""

    def has_signals(self, screening: Mapping[str, Any] | None) -> bool:
        """Whether ``screening`` found anything at all (any signal, whatever its weight)."""

    def summary(self, screening: Mapping[str, Any] | None, text: str) -> dict[str, Any] | None:
        """For staff: ``{"score", "names"}`` when a current screening of ``text`` is worth flagging."""


_screener: Screener | None = None


def register(screener: Screener | None) -> None:
    """Make ``screener`` the one ingestion uses (None: none). The last registration wins."""
    global _screener
    _screener = screener


def registered() -> Screener | None:
    return _screener


def passage_screen(*, text: str) -> dict[str, Any] | None:
    """The screening to store with a passage (``Chunk.screening``); None when no screener is registered
    or the screener failed on it (the passage is then scanned live when retrieved)."""
    return _screener.screen(text) if _screener is not None else None


def screening_is_current(*, screening: Mapping[str, Any] | None, text: str) -> bool:
    """Whether the stored ``screening`` of a passage whose text is ``text`` is up to date (False with
    no screener registered: nothing could make it current)."""
    return _screener is not None and _screener.is_current(screening, text)


def screening_has_signals(*, screening: Mapping[str, Any] | None) -> bool:
    return _screener is not None and _screener.has_signals(screening)


def screening_summary(*, screening: Mapping[str, Any] | None, text: str) -> dict[str, Any] | None:
    """The one-line summary of a chunk's stored screening for the staff pages (``{"score", "names"}``
    when it is current and worth flagging), or None."""
    return _screener.summary(screening, text) if _screener is not None else None


# --- Identifiers: where a passage must not be cut ----------------------------------------------------


class IdentifierFinder(Protocol):
    """Where a text's client identifiers are (``guardrails.identifiers.FINDER`` is the one in use). It is
    handed to the parsing child process, so it must pickle by reference (a module-level instance)."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` stretches a cut must not fall inside (identifiers with the keywords
        announcing them, and anything that may be one), in order, not overlapping."""

    def identifiers(self, text: str) -> list[tuple[int, int]]:
        """The identifiers themselves, with the keywords announcing them, in order, not overlapping."""

    def may_cross(self, left: str, right: str) -> bool:
        """A quick test before ``identifiers`` at a paragraph junction: False when no identifier can run
        from the end of ``left`` into ``right`` once they are joined by a space (nothing near the
        junction could belong to one, in any spelling the finder recognises); True: ask ``identifiers``."""


_identifier_finder: IdentifierFinder | None = None


def register_identifier_finder(finder: IdentifierFinder | None) -> None:
    """Make ``finder`` the one the chunker consults (None: none). ``AgentsConfig.ready()`` registers
    guardrails' PII detector (``guardrails.identifiers.FINDER``), so that the chunker never
    cuts an identifier in two — each half would reach a provider unrecognised by the PII guardrail,
    which screens every passage alone. The last registration wins."""
    global _identifier_finder
    _identifier_finder = finder


def identifier_finder() -> IdentifierFinder | None:
    """The finder registered with ``register_identifier_finder``; None when there is none (chunks are
    then cut without regard to identifiers)."""
    return _identifier_finder
