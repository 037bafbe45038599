"""``pii``: personal and financial identifiers, found by pattern and confirmed by their check digits.

Each entity has a candidate pattern; a candidate counts only when python-stdnum (or phonenumbers for
telephone numbers) accepts it, so an arbitrary number with the right shape is not flagged. Numbers whose
shape alone says little also need a keyword shortly before them: an EIN ("EIN", "employer
identification", "tax ID"…), a UTR ("UTR", "taxpayer reference"…), an SSN written without separators
("SSN"), a national telephone number written without separators ("tel.", "mobile", "call"…). EU VAT
numbers are recognised with their country prefix (``DE136695976``, ``FR 40 303 265 045``); telephone
numbers with ``+``/``00`` and a country code, or in the national format of ``phone_regions``.

Findings overlap-resolve in the order of ``ENTITIES`` (an IBAN is not also reported as a card number).
With the ``redact`` action each one becomes a typed placeholder (``[IBAN_1]``) — see the engine.

Configuration::

    {"entities": ["email", "phone", "iban", "card", "us_ssn", "us_ein", "uk_nino", "uk_utr", "eu_vat"],
     "allow": ["DE136695976"],          # values never flagged (the firm's own numbers…)
     "phone_regions": ["GB", "US"]}     # regions tried for numbers written without +country code
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.eu import vat as eu_vat
from stdnum.gb import utr as gb_utr
from stdnum.gb import vat as gb_vat
from stdnum.us import ein as us_ein
from stdnum.us import ssn as us_ssn

from guardrails.checks.base import Check, ConfigError, Finding, Redaction, get_string_list, reject_unknown
from guardrails.checks.normalize import fold_identifiers

# Entity key → placeholder label, in the order findings are resolved.
ENTITIES: dict[str, str] = {
    "email": "EMAIL",
    "iban": "IBAN",
    "eu_vat": "VAT",
    "card": "CARD",
    "us_ssn": "SSN",
    "us_ein": "EIN",
    "uk_nino": "NINO",
    "uk_utr": "UTR",
    "phone": "PHONE",
}
DEFAULT_PHONE_REGIONS = ["GB", "US"]
# National numbers of these regions count too when a telephone keyword announces them ("Tél. 01 42 68 53
# 00"); unannounced, their formats are too close to reference numbers and dates.
ANNOUNCED_PHONE_REGIONS = ["IE", "FR", "DE", "NL", "BE", "LU", "ES", "IT", "AT", "CH", "PT", "DK", "SE", "PL"]

_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"

_EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}"
    r"\s?(?:@|\[at\]|\(at\)|\{at\})\s?"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\s?(?:\.|\[dot\]|\(dot\))\s?[A-Za-z0-9-]{1,63})*"
    r"\s?(?:\.|\[dot\]|\(dot\))\s?[A-Za-z]{2,24}(?![\w-])"
)
_IBAN_RE = re.compile(_NOT_ALNUM_BEFORE + r"[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,32}")
_VAT_COUNTRIES = sorted({c.upper() for c in eu_vat.MEMBER_STATES} | {"EL", "GB", "XI"})
_VAT_RE = re.compile(
    _NOT_ALNUM_BEFORE + r"(?:" + "|".join(_VAT_COUNTRIES) + r")[ \-]?[0-9A-Z](?:[ .\-]?[0-9A-Z]){6,13}"
)
_CARD_RE = re.compile(
    r"(?<![\d.,-])(?:"
    r"\d{4}(?P<s1>[ \-]?)\d{4}(?P=s1)\d{4}(?P=s1)\d{1,7}"  # 4-4-4-4 (13-19 digits)
    r"|3[47]\d{2}(?P<s2>[ \-]?)\d{6}(?P=s2)\d{5}"  # American Express 4-6-5
    r")(?!\d|[.,]\d)"
)
_SSN_RE = re.compile(r"(?<![\w/.-])\d{3}(?P<s>[ \-])\d{2}(?P=s)\d{4}(?![\w/-]|\.\d)")
_NINE_DIGITS_RE = re.compile(r"(?<![\w/.-])\d{9}(?![\w/-]|\.\d)")
_EIN_RE = re.compile(r"(?<![\w/.-])\d{2}-?\d{7}(?![\w/-]|\.\d)")
_NINO_RE = re.compile(_NOT_ALNUM_BEFORE + r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]" + _NOT_ALNUM_AFTER)
_UTR_RE = re.compile(r"(?<![\w/.-])[Kk]?\d{5} ?\d{5}[Kk]?(?![\w/-]|\.\d)")
_PHONE_INTL_RE = re.compile(r"(?<![\w+])(?:\+|00)[1-9][0-9 .\-()]{6,22}\d(?![\w])")
# Every identifier but an e-mail address holds a run of at least six digits (with single spaces,
# dashes, dots or brackets between them). One fast scan finds those runs; each entity is then looked for
# only in a window around a run with enough digits for it, instead of scanning the whole text once per
# entity. (Old-style Irish VAT numbers such as IE8Z49289F hold no such run and are not recognised.)
_CLUSTER_RE = re.compile(r"\d(?:[ \-.()]{0,2}\d){5,}")
# Fewest digits in the run, and how far before / after the run the identifier may reach.
_WINDOW = {
    "iban": (6, 14, 40),
    "eu_vat": (6, 6, 16),
    "card": (13, 2, 2),
    "us_ssn": (9, 2, 2),
    "us_ein": (9, 2, 2),
    "uk_nino": (6, 4, 4),
    "uk_utr": (10, 3, 3),
    "phone": (8, 3, 2),
}
_EMAIL_HINT_RE = re.compile(r"@|[\[({]at[\])}]", re.I)
_PHONE_NATIONAL_RE = re.compile(
    r"(?<![\w+./,-])(?:\(0?\d{2,5}\)|0\d{1,4}|\d{3})(?:[ .\-]?\d{2,5}){1,4}(?![\w/,-]|\.\d)"
)

# Keywords that must come shortly before numbers whose shape alone is ambiguous.
_CONTEXT = {
    # (?!_): a placeholder such as [SSN_1] is not a keyword.
    "us_ssn": re.compile(r"\b(?:ssn|social security|soc\.? sec)(?!_)", re.I),
    "us_ein": re.compile(
        r"\b(?:ein|fein|employer (?:identification|id)|federal tax (?:id|identification)|"
        r"tax id(?:entification)?|tin|irs (?:number|no))\b",
        re.I,
    ),
    "uk_utr": re.compile(
        r"\b(?:utr|unique taxpayer|taxpayer ref|tax reference|self[- ]assessment|sa ref)(?!_)", re.I
    ),
    "phone": re.compile(
        r"\b(?:tel|telephone|phone|mobile|mob|cell|call|ring|text|sms|whatsapp|fax|contact|"
        r"reach|(?:t|m)(?=\s*[:.])|t[ée]l[ée]phone|t[ée]l|portable|appele[rz]|telefon|telefoon|ruf|anrufen|handy|"
        r"bel|mobiel|telefono|cellulare|chiam[ai]|tel[ée]fono|m[óo]vil|llam[ae]|telem[óo]vel)\b\.?",
        re.I,
    ),
}
_CONTEXT_WINDOW = 40
_GROUP_BREAK_RE = re.compile(r"[ .\-)]+")

# NINO prefixes that HMRC never issues.
_NINO_BAD_FIRST = set("DFIQUV")
_NINO_BAD_SECOND = set("DFIOQUV")
_NINO_BAD_PREFIXES = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}

_CARD_PREFIXES = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|22)|35|62|8[18])")


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``windows`` (in text order) with overlapping ones joined, so no stretch is searched twice."""
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _compact(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def _prefix_end(candidate: str, length: int) -> int:
    """The index in ``candidate`` just after its ``length``-th letter or digit."""
    seen = 0
    for i, ch in enumerate(candidate):
        if ch.isalnum():
            seen += 1
            if seen == length:
                return i + 1
    return len(candidate)


def _shorter(candidate: str):
    """``candidate``, then ``candidate`` without its last group, and so on (at most three groups
    dropped): a telephone number followed by another number is still found."""
    yield candidate
    for _ in range(3):
        cut = max(candidate.rfind(" "), candidate.rfind("-"), candidate.rfind("."))
        if cut <= 0:
            return
        candidate = candidate[:cut].rstrip(" .-")
        yield candidate


def _mod97(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


class PIICheck(Check):
    kind = "pii"
    sentence_wise = True
    actions = frozenset({"block", "redact", "warn"})
    default_action = "redact"
    example_config: ClassVar[dict[str, Any]] = {
        "entities": list(ENTITIES),
        "allow": [],
        "phone_regions": ["GB", "US"],
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"entities", "allow", "phone_regions"}, errors)
        if "entities" in config:
            entities = get_string_list(config, "entities", errors, required=True)
            unknown = [e for e in entities if e not in ENTITIES]
            if unknown:
                errors.append(
                    f"Unknown entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}. "
                    f"Choose from: {', '.join(ENTITIES)}."
                )
        else:
            entities = list(ENTITIES)
        allow = get_string_list(config, "allow", errors)
        regions = get_string_list(config, "phone_regions", errors, max_items=50)
        if "phone_regions" not in config:
            regions = list(DEFAULT_PHONE_REGIONS)
        supported = phonenumbers.SUPPORTED_REGIONS
        bad_regions = [r for r in regions if r.upper() not in supported]
        if bad_regions:
            errors.append(
                f"Unknown telephone region(s): {', '.join(bad_regions)} (use ISO codes such as GB)."
            )
        if errors:
            raise ConfigError(errors)
        return {
            "entities": [e for e in ENTITIES if e in entities],
            "allow": allow,
            "phone_regions": [r.upper() for r in regions],
        }

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.entities: list[str] = list(config["entities"])
        self.allow = {_compact(v) for v in config["allow"]} | {v.lower() for v in config["allow"]}
        self.regions: list[str] = list(config["phone_regions"])
        self._finders: dict[str, Callable[..., list[tuple[int, int]]]] = {
            "email": self._emails,
            "iban": self._ibans,
            "eu_vat": self._vat_numbers,
            "card": self._cards,
            "us_ssn": self._ssns,
            "us_ein": self._eins,
            "uk_nino": self._ninos,
            "uk_utr": self._utrs,
            "phone": self._phones,
        }

    # --- Detection ----------------------------------------------------------------------------

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Every identifier in ``text`` as ``(start, end, entity)``, without overlaps, in text order."""
        view = fold_identifiers(text)
        haystack = view.text
        runs = [
            (m.start(), m.end(), sum(map(str.isdigit, m.group()))) for m in _CLUSTER_RE.finditer(haystack)
        ]
        found: list[tuple[int, int, str]] = []
        taken: list[tuple[int, int]] = []
        length = len(haystack)
        for entity in self.entities:
            if entity == "email":
                spans = self._emails(haystack)
            else:
                fewest, before, after = _WINDOW[entity]
                windows = _merged(
                    [(max(0, s - before), min(length, e + after)) for s, e, n in runs if n >= fewest]
                )
                spans = sorted(set(self._finders[entity](haystack, windows))) if windows else []
            for start, end in spans:
                if any(start < t_end and t_start < end for t_start, t_end in taken):
                    continue
                value = haystack[start:end]
                if _compact(value) in self.allow or value.lower() in self.allow:
                    continue
                taken.append((start, end))
                o_start, o_end = view.span(start, end)
                found.append((o_start, o_end, entity))
        found.sort()
        return found

    @staticmethod
    def _has_context(entity: str, text: str, start: int) -> bool:
        return bool(_CONTEXT[entity].search(text, max(0, start - _CONTEXT_WINDOW), start))

    def _emails(self, text: str) -> list[tuple[int, int]]:
        hints = _EMAIL_HINT_RE.findall(text, 0, len(text))
        if len(hints) > 16:
            # Many '@': one scan of the whole text costs less than a window per '@'.
            return [m.span() for m in _EMAIL_RE.finditer(text)]
        spans: list[tuple[int, int]] = []
        for hint in _EMAIL_HINT_RE.finditer(text) if hints else ():
            if spans and hint.start() < spans[-1][1]:
                continue
            window = (max(0, hint.start() - 70), min(len(text), hint.end() + 260))
            for match in _EMAIL_RE.finditer(text, *window):
                if match.start() <= hint.start() < match.end():
                    spans.append(match.span())
                    break
        return spans

    @staticmethod
    def _prefixed(
        pattern: re.Pattern[str],
        text: str,
        windows: list[tuple[int, int]],
        accept: Callable[[str], int | None],
    ) -> list[tuple[int, int]]:
        """Candidates of ``pattern`` starting in ``windows`` whose longest valid prefix ``accept``
        returns (as a number of letters and digits). Scanning resumes right after each identifier
        found, so a greedy candidate that ran into the next identifier does not hide it."""
        spans = []
        for window_start, window_end in windows:
            position = window_start
            limit = min(len(text), window_end + 48)  # room for the longest candidate
            while (match := pattern.search(text, position, limit)) and match.start() < window_end:
                length = accept(match.group())
                if length is None:
                    position = match.start() + 1
                    continue
                end = match.start() + _prefix_end(match.group(), length)
                spans.append((match.start(), end))
                position = end
        return spans

    def _ibans(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        def accept(candidate: str) -> int | None:
            compact = _compact(candidate)
            for length in range(min(len(compact), 34), 14, -1):
                prefix = compact[:length]
                if _mod97(prefix) and stdnum_iban.is_valid(prefix):
                    return length
            return None

        return self._prefixed(_IBAN_RE, text, windows, accept)

    def _vat_numbers(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        def accept(candidate: str) -> int | None:
            compact = _compact(candidate)
            validator = gb_vat if compact[:2] == "GB" else eu_vat
            for length in range(len(compact), 8, -1):
                number = compact[:length]
                if validator.is_valid(number if validator is eu_vat else number[2:]):
                    end = _prefix_end(candidate, length)
                    if end < len(candidate) and candidate[end].isalnum():
                        continue  # the number would end inside a word
                    return length
            return None

        return self._prefixed(_VAT_RE, text, windows, accept)

    @staticmethod
    def _scan(
        pattern: re.Pattern[str],
        text: str,
        windows: list[tuple[int, int]],
        accept: Callable[[re.Match[str]], bool],
    ) -> list[tuple[int, int]]:
        """Matches of ``pattern`` in ``windows`` that ``accept`` confirms. After a rejected candidate the
        search resumes at its next group of digits, so a number that fails its check (a reference, a
        date) cannot swallow an identifier written right after it."""
        spans: list[tuple[int, int]] = []
        for window_start, window_end in windows:
            position = window_start
            while match := pattern.search(text, position, window_end):
                if accept(match):
                    spans.append(match.span())
                    position = match.end()
                    continue
                separator = _GROUP_BREAK_RE.search(match.group(), 1)
                position = match.start() + separator.end() if separator else match.end()
        return spans

    def _cards(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        def accept(match: re.Match[str]) -> bool:
            digits = _compact(match.group())
            return 13 <= len(digits) <= 19 and bool(_CARD_PREFIXES.match(digits)) and luhn.is_valid(digits)

        return self._scan(_CARD_RE, text, windows, accept)

    def _ssns(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        spans = self._scan(_SSN_RE, text, windows, lambda m: us_ssn.is_valid(_compact(m.group())))
        return spans + self._scan(
            _NINE_DIGITS_RE,
            text,
            windows,
            lambda m: us_ssn.is_valid(m.group()) and self._has_context("us_ssn", text, m.start()),
        )

    def _eins(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return self._scan(
            _EIN_RE,
            text,
            windows,
            lambda m: us_ein.is_valid(_compact(m.group())) and self._has_context("us_ein", text, m.start()),
        )

    def _ninos(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        def accept(match: re.Match[str]) -> bool:
            prefix = _compact(match.group())[:2]
            return not (
                prefix[0] in _NINO_BAD_FIRST or prefix[1] in _NINO_BAD_SECOND or prefix in _NINO_BAD_PREFIXES
            )

        return self._scan(_NINO_RE, text, windows, accept)

    def _utrs(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return self._scan(
            _UTR_RE,
            text,
            windows,
            lambda m: (
                gb_utr.is_valid(_compact(m.group()).strip("K"))
                and self._has_context("uk_utr", text, m.start())
            ),
        )

    def _phones(self, text: str, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []

        def overlaps(start: int, end: int) -> bool:
            return any(s < end and start < e for s, e in spans)

        for window_start, window_end in windows:
            for match in _PHONE_INTL_RE.finditer(text, window_start, window_end):
                for raw in _shorter(match.group()):
                    number = "+" + raw[2:] if raw.startswith("00") else raw
                    if self._valid_phone(number, None):
                        if not overlaps(match.start(), match.start() + len(raw)):
                            spans.append((match.start(), match.start() + len(raw)))
                        break
        for window_start, window_end in windows:
            position = window_start
            while match := _PHONE_NATIONAL_RE.search(text, position, window_end):
                found = None if overlaps(*match.span()) else self._national_phone(text, match)
                if found is not None:
                    spans.append(found)
                    position = found[1]
                    continue
                # Not a number here: try again from the next group of digits (a reference or an
                # identifier just before a telephone number must not hide it).
                separator = _GROUP_BREAK_RE.search(match.group(), 1)
                position = match.start() + separator.end() if separator else match.end()
        return spans

    def _national_phone(self, text: str, match: re.Match[str]) -> tuple[int, int] | None:
        """The telephone number written without a country code at ``match``, if it is one."""
        context = None
        for raw in _shorter(match.group()):
            digits = re.sub(r"\D", "", raw)
            if len(digits) < 9:
                return None
            # Without a country code the shape must look like a telephone number (separators, an
            # area code in brackets) or a keyword must announce it.
            formatted = raw[0] == "(" or (re.search(r"[ .\-]", raw) and len(digits) >= 10)
            if context is None:
                context = self._has_context("phone", text, match.start())
            if not formatted and not context:
                continue
            regions = self.regions
            if context:
                regions = regions + [r for r in ANNOUNCED_PHONE_REGIONS if r not in regions]
            if any(self._valid_phone(raw, region, national=True) for region in regions):
                return match.start(), match.start() + len(raw)
        return None

    @staticmethod
    def _valid_phone(number: str, region: str | None, *, national: bool = False) -> bool:
        """Whether ``number`` is a valid telephone number; with ``national``, also whether it is written
        as the region writes its own numbers (with the trunk prefix: 020…, not 20…)."""
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            return False
        if not phonenumbers.is_valid_number(parsed):
            return False
        if national:
            written = re.sub(r"\D", "", number)
            expected = re.sub(
                r"\D", "", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            )
            return written == expected
        return True

    # --- Check ---------------------------------------------------------------------------------

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        found = self.find(text)
        if not found:
            return Finding(False, "No personal identifiers found.")
        counts: dict[str, int] = {}
        for _, _, entity in found:
            counts[entity] = counts.get(entity, 0) + 1
        summary = ", ".join(f"{n} × {entity}" for entity, n in counts.items())
        return Finding(
            True,
            f"Personal identifiers found: {summary}.",
            spans=list(found),
            details={"counts": counts},
            redactions=[Redaction(s, e, ENTITIES[entity], text[s:e]) for s, e, entity in found],
        )
