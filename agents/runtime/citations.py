"""Citation numbers 1…n in order of appearance, for every provider.

The passages are shown to the model numbered by search rank (``[1]`` the best match). A model citing
only the second and the fourth would leave the reader with "[2] … [4]" and a citation list that
starts at 2. Here the answer's citations are renumbered in the order in which they first appear:
"[2] … [4] … [2]" becomes "[1] … [2] … [1]", and the execution's ``citations`` list maps each new
number ``n`` to the passage it stands for (``passage``: its number as the model saw it).

What counts as a citation is what the ``citation_required`` output guardrail counts
(``guardrails.checks.citation_required.MARKER_RE``): ``[2]``, ``[2, 4]``, ``[2-4]``, ``[source 2]``,
``[^2]``. A renumbered marker is written plainly: ``[1]``, ``[1, 2]``, ``[1-3]`` for three or more
consecutive numbers.

A number with no passage behind it (``[9]`` when five passages were retrieved, or ``[0]``) is left as
the model wrote it and gets no entry in ``citations``: removing it would hide that the model cited
something it was not given, and the ``citation_required`` guardrail reports it as invalid either way.
It cannot be mistaken for a renumbered citation, which is always between 1 and the passage count.

Two ways in, with the same result for the same text:

- ``renumber(answer, passages)`` for a whole answer, returning ``(text, citations)``;
- ``Renumberer(passages)`` for an answer that arrives piece by piece (streaming, sentence by
  sentence): ``feed(piece)`` returns the text that can be shown now — a marker cut between two pieces
  (``"… [" + "2] …"``) is held back until it is whole — ``flush()`` what is held at the end,
  ``citations()`` the list so far.
"""

from __future__ import annotations

import re

from guardrails.checks.citation_required import MARKER_RE, marker_numbers

#: An opening bracket near the end of a piece with no closing one yet: the start of a marker, maybe.
OPEN_TAIL = re.compile(r"\[[^\[\]\n]{0,40}$")


def citation_entry(n: int, number: int, passage) -> dict:
    """The ``citations`` entry for passage number ``number`` (as the model saw it), shown as ``[n]``."""
    return {
        "n": n,
        "passage": number,
        "chunk_id": passage.chunk_id,
        "document_id": passage.document_id,
        "document_title": passage.document_title,
        "knowledge_base_id": passage.knowledge_base_id,
        "page": passage.page,
        "heading_path": passage.heading_path,
        "citation": passage.citation_label(),
        "score": round(passage.score, 4),
    }


def _written(numbers: list[int]) -> str:
    """``[1]``, ``[1, 3]``, ``[1-3]``: sorted, runs of three or more as ranges."""
    numbers = sorted(set(numbers))
    parts: list[str] = []
    start = 0
    while start < len(numbers):
        end = start
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        if end - start >= 2:
            parts.append(f"{numbers[start]}-{numbers[end]}")
        else:
            parts.extend(str(n) for n in numbers[start : end + 1])
        start = end + 1
    return "[" + ", ".join(parts) + "]"


class Renumberer:
    """Renumbers the citations of one answer fed in order; see the module docstring."""

    def __init__(self, passages: list) -> None:
        self.passages = list(passages)
        self.new_number: dict[int, int] = {}  # passage number as the model saw it -> number shown
        self.held = ""

    def feed(self, piece: str) -> str:
        """The renumbered text of ``piece`` (and of what was held back), but for a marker still open."""
        text = self.held + piece
        tail = OPEN_TAIL.search(text)
        cut = tail.start() if tail else len(text)
        self.held = text[cut:]
        return self._renumbered(text[:cut])

    def flush(self) -> str:
        """What ``feed`` held back, renumbered: call once the answer is complete."""
        text, self.held = self.held, ""
        return self._renumbered(text)

    def citations(self) -> list[dict]:
        """The ``citations`` entries so far, in the order of their new numbers."""
        by_new = sorted((n, number) for number, n in self.new_number.items())
        return [citation_entry(n, number, self.passages[number - 1]) for n, number in by_new]

    def _renumbered(self, text: str) -> str:
        if "[" not in text:
            return text
        return MARKER_RE.sub(self._marker, text)

    def _marker(self, match: re.Match) -> str:
        numbers = marker_numbers(match.group(1))
        valid = [n for n in numbers if 1 <= n <= len(self.passages)]
        if not valid:
            return match.group(0)
        for number in valid:
            self.new_number.setdefault(number, len(self.new_number) + 1)
        invalid = [n for n in numbers if n not in valid]
        shown = _written([self.new_number[n] for n in valid])
        if invalid:  # kept as written, after the renumbered ones
            shown = shown[:-1] + ", " + ", ".join(map(str, invalid)) + "]"
        return shown


#: A citation marker with the spaces before it, as ``without_citations`` removes it.
_MARKER_WITH_SPACE = re.compile(r"[ \t]*" + MARKER_RE.pattern, MARKER_RE.flags)


def without_citations(text: str) -> str:
    """``text`` without its citation markers: an earlier turn's answer or an approved example cites
    passages of another retrieval, and a model copying their "[1]" would tie it to this run's
    passage 1 (``boundary.compose`` sends them so). Placeholders (``[IBAN_1]``) are not markers."""
    return _MARKER_WITH_SPACE.sub("", text) if "[" in text else text


def renumber(answer: str, passages: list) -> tuple[str, list[dict]]:
    """``answer`` with its citations numbered 1…n in order of appearance, and the ``citations`` list."""
    renumberer = Renumberer(passages)
    text = renumberer.feed(answer) + renumberer.flush()
    return text, renumberer.citations()
