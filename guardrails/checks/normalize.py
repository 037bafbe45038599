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
from dataclasses import dataclass

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
    "ᴢ": "z",
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
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
         "!": "i", "|": "l", "+": "t", "€": "e", "(": "c"}  # fmt: skip
_LEET_RE = re.compile(r"(?<=[a-z])[0134578]|[0134578@$!|+€](?=[a-z])")
# Letters spelt out one at a time with separators: "i g n o r e", "s.y.s.t.e.m", "p-r-o-m-p-t".
_SPACED_RE = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-_*·/\\]{1,2}){3,}[a-z](?![a-z0-9])")
_SEPARATORS_RE = re.compile(r"[ .\-_*·/\\]")


@dataclass(slots=True)
class View:
    """A normalised view of a text; ``origin[i]`` is the text index of view character ``i``."""

    text: str
    origin: list[int] | None  # None: same length, index i maps to i
    source_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The text span of the view span ``[start, end)``."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.source_length, self.source_length
        last = self.origin[max(start, end - 1)] + 1 if end > start else self.origin[start]
        return self.origin[start], last


def _translate(text: str, table: dict) -> View:
    if text.isascii() and table is _IDENTIFIER:
        return View(text, None, len(text))
    view = text.translate(table)
    if len(view) == len(text) and all(len(table[ord(ch)]) == 1 for ch in set(text) if not ch.isascii()):
        return View(view, None, len(text))
    origin: list[int] = []
    for i, ch in enumerate(text):
        origin.extend([i] * len(table[ord(ch)]))
    return View(view, origin, len(text))


def fold_identifiers(text: str) -> View:
    """The identifier view (see the module docstring)."""
    return _translate(text, _IDENTIFIER)


def fold(text: str, *, leet: bool = True, join_spaced: bool = True) -> View:
    """The matching view (see the module docstring)."""
    view = _translate(text, _FOLD)
    folded = view.text
    if leet:
        folded = _LEET_RE.sub(lambda m: _LEET[m.group()], folded)
    if join_spaced and _SPACED_RE.search(folded):
        origin = view.origin if view.origin is not None else list(range(len(folded)))
        parts: list[str] = []
        new_origin: list[int] = []
        pos = 0
        for match in _SPACED_RE.finditer(folded):
            parts.append(folded[pos : match.start()])
            new_origin.extend(origin[pos : match.start()])
            for i in range(match.start(), match.end()):
                if not _SEPARATORS_RE.match(folded[i]):
                    parts.append(folded[i])
                    new_origin.append(origin[i])
            # Keep a word break after the joined word.
            pos = match.end()
        parts.append(folded[pos:])
        new_origin.extend(origin[pos:])
        return View("".join(parts), new_origin, len(text))
    return View(folded, view.origin, len(text))


_NON_LETTERS_RE = re.compile(r"[^a-z]+")


def squash(view: View) -> View:
    """Letters only: defeats words split by spaces, punctuation or line breaks (``ig nore``)."""
    squashed = _NON_LETTERS_RE.sub("", view.text)
    if len(squashed) == len(view.text):
        return view
    base = view.origin
    origin = [base[i] if base is not None else i for i, ch in enumerate(view.text) if "a" <= ch <= "z"]
    return View(squashed, origin, view.source_length)
