"""Sentence splitting for the live answer: a provider's chunks in, completed sentences out.

The output stage (``output.py``) checks each sentence before the client sees it, so a sentence must
be complete when it is released and must not be cut where it is not over: "e.g.", "z. B.", "Art. 196",
"§ 13b UStG", "1.000,00 EUR", "19 %" and "3.5" stay inside their sentence.

The rules look only backwards, never at what follows the space after a full stop, so the result does
not depend on how the provider cut its chunks (feeding a text at once or character by character gives
the same sentences) and a sentence is released as soon as the whitespace after it arrives:

- a boundary is a ``.``, ``!``, ``?`` or ``…``, then any closing quotes or brackets and citation
  markers (``[1]``), then a whitespace character, which belongs to the sentence it ends (any further
  whitespace starts the next one, so a sentence is released without waiting for more);
- a line break ends a sentence (list items, paragraphs, headings are each a unit);
- a full stop does not end a sentence after a known abbreviation (``ABBREVIATIONS``, any case), a
  single letter ("z.", "B.", initials), dotted initials ("e.g", "i.e", "U.S"), a number of one or
  two digits ("1." as a list marker or a German ordinal: "am 1. Januar"; "2024." ends a sentence) or
  a Roman numeral list marker ("IV.");
- a text without any boundary is cut at its last whitespace before ``MAX_SENTENCE`` characters, so a
  long unpunctuated answer still reaches the client in pieces.

A placeholder such as ``[EU_VAT_1]`` holds no whitespace, so no boundary falls inside it: a
placeholder split across provider chunks is held until it is whole.

pysbd (the usual rule-based library) was considered: it splits a whole text, not a stream (run on the
growing buffer it re-segments earlier text and its last sentence is never known to be complete), and
its last release dates from 2021. The rules here are few and tested by a table of cases
(``tests/agents/runtime/test_sentences.py``).
"""

from __future__ import annotations

import re

#: Longest text released without a sentence boundary (characters), cut at its last whitespace.
MAX_SENTENCE = 600

#: Words after which a full stop does not end the sentence (compared without case); the offline
#: engine cuts the passages it quotes by the same rule (``providers.offline.split_sentences``).
ABBREVIATIONS = frozenset(
    """
    abs abschn anm approx art arts aufl bd bspw bzgl bzw ca cf ch chap co corp d.h dept dipl dr e.g ed
    eds eg est etc evtl excl f ff fig gem ggf gmbh hr hrn hrsg i.e ie inc incl inkl jr jan feb mar apr
    jun jul aug sep sept oct okt nov dec dez lit ltd max min mio mr mrs ms mwst nr no nos op p para
    paras pp prof rn rz s sec sect sog sr st str tel tz u.a usw vgl vol vs z.b zb zzgl zit ziff
    """.split()
)

_TERMINATORS = ".!?…"
_CLOSERS = "\"'”’»)]"
_CITATION_TAIL = re.compile(r"(?:\s?\[\d{1,3}\])+$")
_ROMAN = re.compile(r"^[IVXLC]{1,6}$")
_DOTTED_INITIALS = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")
_NUMBER = re.compile(r"^[(\[]?\d{1,2}$")


def _is_abbreviation(token: str) -> bool:
    """Whether the word before a full stop makes that full stop part of the sentence."""
    word = token.lstrip("([\"'„“‚‘«»")
    if not word:
        return False
    if word.lower() in ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha():
        return True
    if _DOTTED_INITIALS.match(word):
        return True
    if _NUMBER.match(word):
        return True
    return bool(_ROMAN.match(word))


class SentenceSplitter:
    """Feed it text as it arrives (``feed``); it returns the sentences that are complete. ``flush``
    returns what is left when the text has ended. The sentences, joined, are exactly the text fed."""

    def __init__(self, *, max_sentence: int = MAX_SENTENCE):
        self.max_sentence = max_sentence
        self._buffer = ""
        self._scanned = 0  # characters of the buffer already known not to end a sentence

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        sentences = []
        while True:
            end = self._boundary()
            if end is None:
                break
            sentences.append(self._buffer[:end])
            self._buffer = self._buffer[end:]
            self._scanned = 0
        return sentences

    def flush(self) -> str:
        text, self._buffer, self._scanned = self._buffer, "", 0
        return text

    def _boundary(self) -> int | None:
        """The end of the first complete sentence in the buffer: just after the whitespace character
        that follows it (more whitespace starts the next sentence, so nothing waits for it)."""
        buffer = self._buffer
        # Never past the longest sentence: the cut below must fall where it would have fallen had
        # the text come in smaller chunks.
        for i in range(max(self._scanned, 1), min(len(buffer), self.max_sentence + 1)):
            if buffer[i].isspace() and self._ends_sentence(buffer[:i], buffer[i]):
                return i + 1
        self._scanned = max(1, min(len(buffer), self.max_sentence + 1))
        return self._cut()

    @staticmethod
    def _ends_sentence(head: str, space: str) -> bool:
        """Whether the text ``head``, followed by the whitespace character ``space``, ends a sentence."""
        if space == "\n":
            return bool(head.strip())
        # Citation markers and closing quotes or brackets after the terminator stay with the sentence.
        citations = _CITATION_TAIL.search(head)
        if citations:
            head = head[: citations.start()]
        head = head.rstrip(_CLOSERS)
        if not head or head[-1] not in _TERMINATORS:
            return False
        if head[-1] != "." or head.endswith(".."):
            return True
        before = head[:-1]
        if not before or before[-1].isspace():
            return True
        return not _is_abbreviation(before.split()[-1])

    def _cut(self) -> int | None:
        """Release a long text without a boundary at its last whitespace (never inside a placeholder)."""
        if len(self._buffer) <= self.max_sentence:
            return None
        window = self._buffer[: self.max_sentence]
        cut = max(window.rfind(" "), window.rfind("\t"))
        if cut <= 0:
            return None
        end = cut
        while end < len(self._buffer) and self._buffer[end].isspace():
            end += 1
        return end if end < len(self._buffer) else None


def split(text: str) -> list[str]:
    """All the sentences of ``text`` (joined, they are ``text``)."""
    splitter = SentenceSplitter()
    sentences = splitter.feed(text)
    tail = splitter.flush()
    return sentences + ([tail] if tail else [])
