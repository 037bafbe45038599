"""Text normalisation shared by the checks, so that look-alike spellings match the plain one.

Two views are built from a text:

- ``fold(text)`` — the *matching view*: compatibility forms unfolded (NFKD: fullwidth, mathematical and
  ligature letters become plain ones), accents and zero-width / format characters dropped, case
  folded, and Cyrillic / Greek / other look-alike letters mapped to the Latin letter they imitate
  (``CONFUSABLES``). Digits and symbols used as letters inside words (leetspeak: ``1gn0re``,
  ``$ystem``) become those letters, and letters spelt out one by one (``i g n o r e``,
  ``s.y.s.t.e.m``) are joined.
- ``fold_identifiers(text)`` — the *identifier view* used by the PII check: only fullwidth or other
  compatibility digits and letters are unfolded and zero-width characters removed, so numbers keep
  their digits.

Each view keeps an ``origin`` map (view index → text index) when its length differs from the text, so
that the spans a check finds are reported in the caller's text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

# Look-alike letters that NFKD does not unfold (it keeps scripts apart). Lower case only: the table
# is applied after case folding. Sources: Unicode confusables.txt, restricted to the letters used in
# practice to disguise Latin words.
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "г": "r", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t",
    "у": "y", "х": "x", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ь": "b", "ɡ": "g", "ү": "y", "п": "n",
    "з": "3", "ц": "u", "ш": "w",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u", "ϲ": "c", "ϳ": "j", "ѵ": "v",
    "ς": "s", "σ": "o",
    # Armenian, Latin extensions and IPA
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "ı": "i", "ȷ": "j", "ł": "l", "ø": "o",
    "đ": "d", "ħ": "h", "ŀ": "l", "ɑ": "a", "ɩ": "i", "ʀ": "r", "ʏ": "y", "ᴀ": "a", "ʙ": "b",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l",
    "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w",
    "ᴢ": "z", "ɨ": "i", "ƚ": "l", "ƀ": "b", "ɇ": "e", "ɉ": "j", "ʉ": "u", "ƶ": "z", "ȼ": "c", "ɍ": "r",
    "ŧ": "t", "ꝁ": "k", "ɏ": "y", "ǥ": "g", "ɖ": "d", "ɗ": "d", "ɦ": "h", "ɱ": "m", "ɲ": "n", "ƥ": "p",
}  # fmt: skip

# Invisible characters that are not of category Cf (Hangul fillers, braille blank).
_INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


class _FoldTable(dict):
    """``str.translate`` table for the matching view, filled on first use of each character."""

    def __missing__(self, key: int) -> str:
        value = _fold_char(chr(key))
        self[key] = value
        return value


class _IdentifierTable(dict):
    """``str.translate`` table for the identifier view: compatibility digits/letters and invisibles."""

    def __missing__(self, key: int) -> str:
        ch = chr(key)
        if key < 128:
            value = ch
        elif unicodedata.category(ch) == "Cf" or ch in _INVISIBLE:
            value = ""
        else:
            decomposed = unicodedata.normalize("NFKC", ch)
            value = decomposed if len(decomposed) == 1 and decomposed.isascii() else ch
            if value == ch and unicodedata.category(ch) == "Zs":
                value = " "
        self[key] = value
        return value


def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch.lower()
    if unicodedata.category(ch) == "Cf" or ch in _INVISIBLE:
        return ""
    out = []
    for part in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(part) or unicodedata.category(part) in {"Mn", "Cf"}:
            continue
        for folded in part.casefold():
            out.append(CONFUSABLES.get(folded, folded))
    return "".join(out)


_FOLD = _FoldTable()
_IDENTIFIER = _IdentifierTable()

# Leetspeak: a digit next to a letter, or a symbol before a letter, stands for a letter.
# ("|" is left alone: chat-template markers such as "<|im_start|>" must stay recognisable.)
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
         "!": "i", "+": "t", "€": "e"}  # fmt: skip
# Starts with the rare characters, so the scan skips letters quickly; the letter before a digit is
# checked by a look-behind once a digit is found.
_LEET_RE = re.compile(r"[0134578@$!+€](?=[a-z])|[0134578](?<=[a-z][0134578])")
# Letters spelt out one at a time with separators: "i g n o r e", "s.y.s.t.e.m", "p-r-o-m-p-t". The
# character before the run is consumed rather than looked behind at: much faster to scan for.
_SPACED_RE = re.compile(r"(?:^|[^a-z0-9])((?:[a-z][ .\-_*·/\\]{1,2}){3,}[a-z])(?![a-z0-9])")
_SEPARATOR_RUN_RE = re.compile(r"([ .\-_*·/\\]+)")


@dataclass(slots=True, eq=False)
class View:
    """A normalised view of a text; ``origin[i]`` is the text index of view character ``i``."""

    text: str
    origin: list[int] | None  # None: same length, index i maps to i
    source_length: int
    origin_factory: Callable[[], list[int]] | None = None  # computes ``origin`` on first use

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The text span of the view span ``[start, end)``."""
        if self.origin is None and self.origin_factory is not None:
            self.origin = self.origin_factory()
            self.origin_factory = None
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.source_length, self.source_length
        last = self.origin[max(start, end - 1)] + 1 if end > start else self.origin[start]
        return self.origin[start], last


_NON_ASCII_RUN_RE = re.compile(r"[^\x00-\x7f]+")


def _translate(text: str, table: dict) -> View:
    """Apply ``table`` to the non-ASCII characters of ``text`` (ASCII is only lower-cased for the
    matching view); build an origin map only if a character changed length."""
    lower = table is _FOLD
    if text.isascii():
        return View(text.lower() if lower else text, None, len(text))
    parts: list[str] = []
    changed_length = False
    position = 0
    for run in _NON_ASCII_RUN_RE.finditer(text):
        ascii_part = text[position : run.start()]
        parts.append(ascii_part.lower() if lower else ascii_part)
        for ch in run.group():
            mapped = table[ord(ch)]
            changed_length = changed_length or len(mapped) != 1
            parts.append(mapped)
        position = run.end()
    tail = text[position:]
    parts.append(tail.lower() if lower else tail)
    view = "".join(parts)
    if not changed_length:
        return View(view, None, len(text))

    def origin() -> list[int]:
        result: list[int] = []
        for i, ch in enumerate(text):
            result.extend([i] * (1 if ch.isascii() else len(table[ord(ch)])))
        return result

    return View(view, None, len(text), origin)


def fold_identifiers(text: str) -> View:
    """The identifier view (see the module docstring)."""
    return _translate(text, _IDENTIFIER)


def _unleet(folded: str) -> str:
    """Replace digits and symbols standing for letters: a leet digit next to a letter, a leet symbol
    before a letter. Repeated until stable, for runs such as ``5y573m``; same length, so the origin
    map is unchanged."""
    for _ in range(4):
        chars: list[str] | None = None
        for match in _LEET_RE.finditer(folded):
            if chars is None:
                chars = list(folded)
            chars[match.start()] = _LEET[match.group()]
        if chars is None:
            return folded
        folded = "".join(chars)
    return folded


@lru_cache(maxsize=8)
def fold(text: str, *, leet: bool = True, join_spaced: bool = True) -> View:
    """The matching view (see the module docstring).

    Memoised (a few texts only, so long texts are not kept): the checks of one ``evaluate`` call share the
    view of the same text. A returned view must be treated as read-only.
    """
    view = _translate(text, _FOLD)
    folded = view.text
    if leet:
        folded = _unleet(folded)
    if join_spaced and _SPACED_RE.search(folded):
        view.span(0, 0)  # materialise a lazy origin map
        origin = view.origin if view.origin is not None else list(range(len(folded)))
        parts: list[str] = []
        new_origin: list[int] = []
        pos = 0
        for match in _SPACED_RE.finditer(folded):
            parts.append(folded[pos : match.start(1)])
            new_origin.extend(origin[pos : match.start(1)])
            run = match.group(1)
            # The separator used between letters is the commonest one; any other separator (a double
            # space after single ones, a space after dots) marks a break between words.
            separators = _SEPARATOR_RUN_RE.findall(run)
            usual = max(set(separators), key=separators.count)
            offset = match.start(1)
            for piece in _SEPARATOR_RUN_RE.split(run):
                if piece is None:
                    continue
                if _SEPARATOR_RUN_RE.fullmatch(piece):
                    if piece != usual:
                        parts.append(" ")
                        new_origin.append(origin[offset])
                else:
                    parts.append(piece)
                    new_origin.extend(origin[offset : offset + len(piece)])
                offset += len(piece)
            pos = match.end(1)
        parts.append(folded[pos:])
        new_origin.extend(origin[pos:])
        return View("".join(parts), new_origin, len(text))
    return View(folded, view.origin, len(text), view.origin_factory)


_LETTERS_RE = re.compile(r"[a-z]+")


@lru_cache(maxsize=4)
def squash(view: View) -> View:
    """Letters only: defeats words split by spaces, punctuation or line breaks (``ig nore``).

    The origin map is built only when a span is asked for (a match is rare).
    """
    squashed = "".join(_LETTERS_RE.findall(view.text))
    if len(squashed) == len(view.text):
        return view

    def origin() -> list[int]:
        view.span(0, 0)  # materialise a lazy origin map
        base = view.origin
        return [base[i] if base is not None else i for i, ch in enumerate(view.text) if "a" <= ch <= "z"]

    return View(squashed, None, view.source_length, origin)
