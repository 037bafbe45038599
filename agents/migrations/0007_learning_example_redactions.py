"""Learning examples are stored with client identifiers as placeholders (``[IBAN_1]``) and the mapping
encrypted in ``redactions``, as executions are. The examples already stored are redacted here.

Frozen: the detection is written out here as it stood when this migration was written, from what
``guardrails.checks.pii`` finds with every entity on (e-mail addresses, IBANs, EU VAT numbers, card
numbers, US SSNs and EINs, UK NINOs and UTRs, international telephone numbers), with literal patterns and
the check digits that need no library (IBAN mod 97, Luhn, SSN ranges); VAT and telephone numbers are
taken by their shape alone. Taking a little more than the PII check would loses nothing: the mapping
gives every value back to those allowed to see it. Plus, for an example proposed from feedback, the
values its run's own (encrypted) mapping knows. The placeholders are numbered as the engine numbers them.

Backwards: a no-op (documented in docs/security.md): the values stay redacted, the mapping stays in
``redactions``.
"""

import json
import re

from django.db import migrations

import prisma_glow.crypto

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
    r"(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![\w-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,32}")
_VAT_COUNTRIES = (
    "AT BE BG CY CZ DE DK EE EL ES FI FR GB HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI"
).split()
_VAT = re.compile(
    r"(?<![A-Za-z0-9])(?:" + "|".join(_VAT_COUNTRIES) + r")[ \-]?[0-9A-Z](?:[ .\-]?[0-9A-Z]){7,11}"
    r"(?![A-Za-z0-9])"
)
_CARD = re.compile(
    r"(?<![\d.,-])(?:\d{4}(?P<s1>[ \-]?)\d{4}(?P=s1)\d{4}(?P=s1)\d{1,7}"
    r"|3[47]\d{2}(?P<s2>[ \-]?)\d{6}(?P=s2)\d{5})(?!\d|[.,]\d)"
)
_SSN = re.compile(r"(?<![\w/.-])(\d{3})(?P<s>[ \-])(\d{2})(?P=s)(\d{4})(?![\w/-]|\.\d)")
_SSN_PLAIN = re.compile(r"(?<![\w/.-])\d{9}(?![\w/-]|\.\d)")
_EIN = re.compile(r"(?<![\w/.-])\d{2}-?\d{7}(?![\w/-]|\.\d)")
_NINO = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2}) ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d](?![A-Za-z0-9])")
_UTR = re.compile(r"(?<![\w/.-])[Kk]?\d{5} ?\d{5}[Kk]?(?![\w/-]|\.\d)")
_PHONE = re.compile(r"(?:(?<![\w+])\+|(?<![\w+./-])00)[1-9][0-9 .\-()]{6,22}\d(?![\w])")
_CONTEXT = {
    "SSN": re.compile(r"\b(?:ssn|social security|soc\.? sec)(?!_)", re.I),
    "EIN": re.compile(
        r"\b(?:ein|fein|employer (?:identification|id)|federal tax (?:id|identification)|"
        r"tax id(?:entification)?|tin|irs (?:number|no))\b",
        re.I,
    ),
    "UTR": re.compile(
        r"\b(?:utr|unique taxpayer|taxpayer ref|tax reference|self[- ]assessment|sa ref)(?!_)", re.I
    ),
}
_NINO_BAD_FIRST, _NINO_BAD_SECOND = set("DFIQUV"), set("DFIOQUV")
_NINO_BAD_PREFIXES = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*)_(\d+)\]")


def _compact(value):
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def _prefix_end(candidate, length):
    seen = 0
    for i, ch in enumerate(candidate):
        if ch.isalnum():
            seen += 1
            if seen == length:
                return i + 1
    return len(candidate)


def _mod97(compact):
    try:
        return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1
    except ValueError:
        return False


def _luhn(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _context(label, text, start):
    return bool(_CONTEXT[label].search(text, max(0, start - 40), start))


def _ibans(text):
    position = 0
    while match := _IBAN.search(text, position):
        compact = _compact(match.group())
        length = next((n for n in range(min(len(compact), 34), 14, -1) if _mod97(compact[:n])), None)
        if length is None:
            position = match.start() + 1
            continue
        end = match.start() + _prefix_end(match.group(), length)
        yield match.start(), end
        position = end


def _vat_numbers(text):
    for match in _VAT.finditer(text):
        if sum(ch.isdigit() for ch in match.group()) >= 7:
            yield match.span()


def _cards(text):
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            yield match.span()


def _ssns(text):
    for match in _SSN.finditer(text):
        area, group, serial = match.group(1), match.group(3), match.group(4)
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            yield match.span()
    for match in _SSN_PLAIN.finditer(text):
        if _context("SSN", text, match.start()):
            yield match.span()


def _eins(text):
    for match in _EIN.finditer(text):
        if _context("EIN", text, match.start()):
            yield match.span()


def _ninos(text):
    for match in _NINO.finditer(text):
        prefix = match.group(1).upper()
        if (
            prefix[0] not in _NINO_BAD_FIRST
            and prefix[1] not in _NINO_BAD_SECOND
            and prefix not in _NINO_BAD_PREFIXES
        ):
            yield match.span()


def _utrs(text):
    for match in _UTR.finditer(text):
        if _context("UTR", text, match.start()):
            yield match.span()


def _phones(text):
    for match in _PHONE.finditer(text):
        if (
            8
            <= sum(ch.isdigit() for ch in match.group()) - (2 if match.group().startswith("00") else 0)
            <= 15
        ):
            yield match.span()


_FINDERS = (
    ("EMAIL", lambda text: (m.span() for m in _EMAIL.finditer(text))),
    ("IBAN", _ibans),
    ("VAT", _vat_numbers),
    ("CARD", _cards),
    ("SSN", _ssns),
    ("EIN", _eins),
    ("NINO", _ninos),
    ("UTR", _utrs),
    ("PHONE", _phones),
)


def _identifiers(text, known):
    """(start, end, label) of every identifier in ``text``: the ``known`` values (value → label), then
    each kind in turn, without overlaps."""
    taken = []
    for value in sorted(known, key=len, reverse=True):
        start = text.find(value)
        while start != -1:
            end = start + len(value)
            if not any(start < e and s < end for s, e, _ in taken):
                taken.append((start, end, known[value]))
            start = text.find(value, end)
    for label, finder in _FINDERS:
        for start, end in finder(text):
            if not any(start < e and s < end for s, e, _ in taken):
                taken.append((start, end, label))
    return sorted(taken)


def redact(texts, known_mapping):
    """``texts`` with placeholders numbered across them, and the mapping placeholder → value."""
    known = {}
    for placeholder, value in (known_mapping or {}).items():
        match = _PLACEHOLDER.fullmatch(placeholder)
        if match and isinstance(value, str) and len(value) >= 4:
            known.setdefault(value, match.group(1))
    mapping, by_value, counters, out = {}, {}, {}, []
    for text in texts:
        parts, position = [], 0
        for start, end, label in _identifiers(text, known):
            value = text[start:end]
            placeholder = by_value.get((label, value))
            if placeholder is None:
                counters[label] = counters.get(label, 0) + 1
                placeholder = f"[{label}_{counters[label]}]"
                mapping[placeholder] = value
                by_value[(label, value)] = placeholder
            parts += [text[position:start], placeholder]
            position = end
        parts.append(text[position:])
        out.append("".join(parts))
    return out, mapping


def _mapping(raw):
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def forwards(apps, schema_editor):
    Example = apps.get_model("agents", "LearningExample")
    examples = Example.objects.filter(redactions="").select_related("source_feedback__execution")
    for example in examples.iterator(chunk_size=200):
        feedback = example.source_feedback
        known = _mapping(feedback.execution.redactions) if feedback is not None else {}
        (question, answer), mapping = redact([example.input, example.output], known)
        if mapping:
            Example.objects.filter(pk=example.pk).update(
                input=question,
                output=answer,
                # EncryptedTextField encrypts on the way in (update() too).
                redactions=json.dumps(mapping),
            )


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0006_conversations"),
    ]

    operations = [
        migrations.AddField(
            model_name="learningexample",
            name="redactions",
            field=prisma_glow.crypto.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
