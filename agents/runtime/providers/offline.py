"""The offline engine: deterministic, extractive, no network and no key.

It is not a generative model and says so. It answers from the retrieved passages by quoting their
best sentences (``extract_answer``):

- The question and every sentence are reduced to **terms**: words stemmed with the Snowball stemmer
  of their language (English or German, told apart by their stopwords), numbers as written without
  thousands separators ("1,000" and "1.000" are 1000), and the firm's vocabulary folded by a small
  built-in synonym list (``SYNONYMS``: a bill is an invoice, sales tax and Umsatzsteuer are VAT, a
  branch is a fixed establishment, Paris and "French" are France…).
- Passages are cut into sentences at their punctuation but not after an abbreviation or inside a
  number ("e.g.", "Art. 44", "1.000,00 EUR"); list items and table rows are sentences of their own
  (a row is quoted with its column headings, an item with the sentence that introduces its list).
- A sentence scores the question's terms it holds, each weighted by how rare it is among the
  sentences retrieved (a term every sentence has, like "VAT" in a VAT manual, says little); terms
  only in the sentence introducing its list, or in its section heading, count for less.
- Only sentences on the question's subject are quoted: those scoring at least ``RELATIVE_THRESHOLD``
  of the best one, where a sentence about another case counts for half: one naming other countries
  than the question without its own (a worked example for a German consultant, asked about a Spanish
  supplier), or the other side of a distinction the question makes (``FACETS``: B2C rules, asked
  about a customer's branch).
- At most ``MAX_SENTENCES`` sentences, ``SENTENCES_PER_PASSAGE`` from one passage, grouped by passage
  (the best first) and quoted in document order, each group cited with its passage's number. The
  pipeline then numbers the citations 1…n in order of appearance (``agents.runtime.citations``).

When no sentence shares a term with the question it says plainly that it found nothing relevant.
When the question clearly asks for a calculation it can parse (VAT on an amount at a rate, an audit
sample size, a business-day deadline, checking an IBAN or VAT number) and the matching built-in tool
is assigned, it calls that tool and reports the result. The same input always gives the same output.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import snowballstemmer

from agents.runtime.providers.base import ConnectionCheck, ModelRequest, ModelResponse, Provider, ToolCall
from agents.runtime.sentences import split

LABEL = "Offline engine (extractive; not a generative model)"
#: Passages read (in search order) and sentences quoted.
MAX_PASSAGES = 8
MAX_SENTENCES = 4
SENTENCES_PER_PASSAGE = 2
#: A sentence is quoted when it scores at least this share of the best sentence's score.
RELATIVE_THRESHOLD = 0.6
#: Weights of the question's terms found only in a list's lead-in sentence or in the section heading.
LEAD_WEIGHT = 0.5
HEADING_WEIGHT = 0.3
#: The share of its score a sentence about another case keeps (``FACETS``; another country).
OTHER_CASE_FACTOR = 0.5
MAX_QUOTE_CHARS = 600
#: What "Test connection" asks the engine (``OfflineProvider.check_connection``).
CHECK_QUESTION = "Are you there?"

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours must may shall
    need needs want tell know get got use used another also
    aber alle als also am an auch auf aus bei bin bis bitte da damit dann das dass dem den der des
    dich die dies diese dieser dir doch du durch ein eine einem einen einer eines er es etwas für
    hat hatte hier ich ihr im in ist ja jetzt kann kein keine man mich mir mit muss müssen nach
    nicht noch nur ob oder sein seine sich sie sind so soll über um und uns unser von vor war was
    weil welche wenn wer werden wie wir wird wo zu zum zur""".split()
)
#: Frequent words that tell German text from English (for the stemmer).
GERMAN_HINTS = frozenset(
    "der die das und ist nicht ein eine einer mit für von auf den dem des sich wird bei oder zu im "
    "ich wir sie auch nach wie muss wer welche wann".split()
)
ENGLISH_HINTS = frozenset("the and is of to in for on with are be what who when which must does".split())

#: The firm's vocabulary: each group's words (English and German, any inflection the stemmer folds)
#: count as its first entry. Multi-word entries are matched as phrases before the words are split.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("vat", "value added tax", "value-added tax", "sales tax", "turnover tax", "umsatzsteuer",
     "mehrwertsteuer", "ust", "mwst", "tva", "iva", "btw"),
    ("invoice", "bill", "billing", "rechnung", "faktura"),
    ("reverse charge", "reverse-charge", "reverse-charged", "reverse charging", "autoliquidation",
     "steuerschuldnerschaft"),
    ("supplier", "vendor", "seller", "contractor", "lieferant"),
    ("customer", "client", "buyer", "purchaser", "recipient", "kunde", "leistungsempfänger"),
    ("branch", "fixed establishment", "permanent establishment", "niederlassung", "betriebsstätte"),
    ("consult", "consultancy", "consulting", "consultant", "advisory", "adviser", "advisor", "advice",
     "advise", "beratung", "berater"),
    ("company", "business", "corporation", "undertaking", "unternehmen", "gesellschaft"),
    ("b2b", "taxable person", "business customer"),
    ("b2c", "non-taxable person", "private person", "private individual", "consumer", "privatperson"),
    ("pay", "accounts for", "account for", "accounting for", "owe", "owes", "liable", "schuldet",
     "zahlen"),
    ("deadline", "due date", "time limit", "no later than", "by when", "frist"),
    ("issue", "send", "raise", "ausstellen"),
    ("keep", "kept", "retain", "retention", "archive", "aufbewahren", "aufbewahrung"),
    ("rate", "percentage", "steuersatz"),
    ("deduct", "deduction", "reclaim", "recover", "vorsteuerabzug"),
    ("employee", "staff", "worker", "mitarbeiter"),
    ("laptop", "notebook", "computer"),
    ("password", "passphrase", "passwort", "kennwort"),
    ("sample", "sampling", "stichprobe"),
    ("engagement letter", "auftragsbestätigung"),
)  # fmt: skip
#: Countries by name, adjective, capital and German name: a sentence about another country than the
#: question's is off its subject. Terms ``country:<code>``.
COUNTRIES: dict[str, tuple[str, ...]] = {
    "at": ("austria", "austrian", "vienna", "österreich", "österreichisch", "wien"),
    "be": ("belgium", "belgian", "brussels", "belgien", "belgisch", "brüssel"),
    "dk": ("denmark", "danish", "copenhagen", "dänemark", "dänisch"),
    "fi": ("finland", "finnish", "helsinki", "finnland", "finnisch"),
    "fr": ("france", "french", "paris", "frankreich", "französisch"),
    "de": ("germany", "german", "berlin", "deutschland", "deutsch"),
    "hu": ("hungary", "hungarian", "budapest", "ungarn", "ungarisch"),
    "ie": ("ireland", "irish", "dublin", "irland", "irisch"),
    "it": ("italy", "italian", "rome", "milan", "italien", "italienisch", "rom", "mailand"),
    "lu": ("luxembourg", "luxembourgish", "luxemburg"),
    "nl": ("netherlands", "dutch", "amsterdam", "holland", "niederlande", "niederländisch"),
    "pl": ("poland", "polish", "warsaw", "polen", "polnisch", "warschau"),
    "pt": ("portugal", "portuguese", "lisbon", "portugiesisch", "lissabon"),
    "es": ("spain", "spanish", "madrid", "barcelona", "spanien", "spanisch"),
    "se": ("sweden", "swedish", "stockholm", "schweden", "schwedisch"),
    "gb": ("united kingdom", "uk", "britain", "british", "london", "großbritannien", "britisch"),
    "us": ("united states", "usa", "american", "vereinigte staaten", "amerikanisch"),
}
COUNTRY = "country:"
#: What a question or a sentence is about, besides its countries: a sentence naming a value the
#: question does not, when the question names another (B2C rules for a question about a branch), is
#: about another case. Each value with the terms that name it.
FACETS: tuple[dict[str, frozenset[str]], ...] = (
    {"b2b": frozenset({"b2b", "branch"}), "b2c": frozenset({"b2c"})},
)

WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+", re.UNICODE)
#: A placeholder of the PII guardrail (``[IBAN_1]``): not a word of the question.
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")
LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)]|[a-z][.)])\s+")
TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")

# --- Calculation requests the engine recognises --------------------------------------------------

CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY"}
AMOUNT = r"(?P<cur>[€$£¥]|EUR|USD|GBP|CHF)?\s?(?P<amount>\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?P<cur2>EUR|USD|GBP|CHF|euros?|dollars?|pounds?)?"
VAT_QUESTION = re.compile(
    r"\bVAT\b.*?\b(?:on|of|for)\s+" + AMOUNT + r".*?\bat\s+(?P<rate>\d{1,2}(?:\.\d+)?)\s?(?:%|percent)",
    re.IGNORECASE | re.DOTALL,
)
GROSS_HINT = re.compile(
    r"\b(gross|including VAT|incl\.? VAT|VAT[- ]inclusive|inclusive of VAT)\b", re.IGNORECASE
)
SAMPLE_QUESTION = re.compile(r"\bsample\s+size\b", re.IGNORECASE)
CONFIDENCE = re.compile(
    r"(\d{2}(?:\.\d+)?)\s?%\s*(?:confidence|confident)|confidence(?:\s+level)?\s+(?:of\s+)?(\d{2}(?:\.\d+)?)\s?%",
    re.IGNORECASE,
)
TOLERABLE = re.compile(
    r"(\d{1,2}(?:\.\d+)?)\s?%\s*tolerable|tolerable(?:\s+deviation)?(?:\s+rate)?\s+(?:of\s+)?(\d{1,2}(?:\.\d+)?)\s?%",
    re.IGNORECASE,
)
EXPECTED = re.compile(
    r"(\d{1,2}(?:\.\d+)?)\s?%\s*expected|expected(?:\s+deviation)?(?:\s+rate)?\s+(?:of\s+)?(\d{1,2}(?:\.\d+)?)\s?%",
    re.IGNORECASE,
)
DEADLINE_QUESTION = re.compile(
    r"(?P<days>\d{1,4})\s+(?:business|working)\s+days?\s+(?P<dir>after|from|before)\s+(?P<date>\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)
IBAN_CANDIDATE = re.compile(r"\b([A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?)\b")
VAT_ID_CANDIDATE = re.compile(
    r"\b((?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[A-Z0-9]{8,12})\b"
)
# The placeholders a PII guardrail puts in place of an IBAN or a VAT number (``guardrails.checks.pii``):
# the run gives the validator the real value behind them.
IBAN_PLACEHOLDER = re.compile(r"\[IBAN_\d+\]", re.IGNORECASE)
VAT_ID_PLACEHOLDER = re.compile(r"\[VAT_\d+\]", re.IGNORECASE)
VALIDATE_HINT = re.compile(r"\b(valid|validate|check|verify|correct)\b", re.IGNORECASE)


def count_tokens(text: str) -> int:
    """The offline engine's token count in the usage figures: an estimate, about four characters per
    token for English prose, as for the chunks' token counts (``knowledge.ingest.chunker``). The engine
    has no tokenizer; counting words and punctuation marks instead cost 0.3 ms of every run."""
    return math.ceil(len(text) / 4) if text else 0


_STEMMERS = {"en": snowballstemmer.stemmer("english"), "de": snowballstemmer.stemmer("german")}


def _phrases() -> tuple[re.Pattern, dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    """The multi-word entries as one pattern (longest first) and their terms; the single words' terms;
    and by language, the terms of the single words' stems."""
    phrases: dict[str, str] = {}
    words: dict[str, str] = {}
    stems: dict[str, dict[str, str]] = {lang: {} for lang in _STEMMERS}
    groups = [(group[0], group) for group in SYNONYMS]
    groups += [(COUNTRY + code, names) for code, names in COUNTRIES.items()]
    for term, entries in groups:
        for entry in entries:
            if re.search(r"[\s-]", entry):
                phrases[entry] = term
            else:
                words[entry] = term
                for lang, stemmer in _STEMMERS.items():
                    stems[lang].setdefault(stemmer.stemWord(entry), term)
    alternatives = sorted(phrases, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![^\W_])(?:"
        + "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in alternatives)
        + r")(?![^\W_])"
    )
    return pattern, phrases, words, stems


PHRASES, PHRASE_TERMS, WORD_TERMS, STEM_TERMS = _phrases()


def language(words: list[str]) -> str:
    """``de`` when ``words`` (lowercased) hold more German than English stopwords, else ``en``."""
    german = sum(w in GERMAN_HINTS for w in words)
    return "de" if german > sum(w in ENGLISH_HINTS for w in words) else "en"


@lru_cache(maxsize=50_000)
def _term(word: str, lang: str) -> str | None:
    """The term of one lowercased word: a synonym group's, else its stem; None for a stopword."""
    if word[0].isdigit():
        return _number(word)
    if word in WORD_TERMS:
        return WORD_TERMS[word]
    if word in STOPWORDS or len(word) < 3:
        return None
    stem = _STEMMERS[lang].stemWord(word)
    if stem in STEM_TERMS[lang]:
        return STEM_TERMS[lang][stem]
    # A word of the other language in the text ("Umsatzsteuerbescheid" in an English question).
    other = "de" if lang == "en" else "en"
    return STEM_TERMS[other].get(_STEMMERS[other].stemWord(word), stem)


def _number(text: str) -> str | None:
    """A number without thousands separators or a zero decimal part ("1,000.00" → "1000"), or None
    for a single digit (list numbers, "1 January")."""
    grouped = re.fullmatch(r"(\d{1,3}(?:([.,])\d{3})(?:\2\d{3})*)(?:[.,](\d{1,2}))?", text)
    if grouped:
        whole, decimals = re.sub(r"[.,]", "", grouped.group(1)), grouped.group(3) or ""
    else:
        whole, _, decimals = text.replace(",", ".").partition(".")
    decimals = decimals.rstrip("0")
    number = f"{whole}.{decimals}" if decimals else whole
    return number if len(number) > 1 else None


def terms(text: str, lang: str | None = None) -> set[str]:
    """The terms of ``text`` (see the module docstring): synonym groups' terms, stems and numbers."""
    lowered = PLACEHOLDER.sub(" ", text).lower()
    found: set[str] = set()
    if " " in lowered or "-" in lowered:
        for match in PHRASES.finditer(lowered):
            found.add(PHRASE_TERMS[re.sub(r"\s+", " ", match.group(0))])
        lowered = PHRASES.sub(" ", lowered)
    words = WORD.findall(lowered)
    lang = lang or language(words)
    found.update(t for t in (_term(w, lang) for w in words) if t)
    return found


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(re.sub(r"[,\s]", "", text))
    except InvalidOperation:
        return None


def _money(value: str, currency: str) -> str:
    symbol = {v: k for k, v in CURRENCY_SYMBOLS.items()}.get(currency)
    amount = Decimal(value)
    text = f"{amount:,.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount:,f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


def _first(match) -> str | None:
    return next((g for g in match.groups() if g), None) if match else None


def plan_tool_call(question: str, tool_names: set[str]) -> tuple[str, dict] | None:
    """The built-in tool call a question clearly asks for, as (tool name, arguments), or None.

    An IBAN or a VAT number the agent's PII guardrail redacted reaches the engine as its placeholder
    (``[IBAN_1]``, ``[VAT_1]``): the engine passes the placeholder, which the run restores for the
    validator (``pipeline._call_tool``), as a model would."""
    match = VAT_QUESTION.search(question)
    if match and "vat-calculator" in tool_names:
        amount = _decimal(match.group("amount"))
        rate = _decimal(match.group("rate"))
        if amount is not None and rate is not None:
            raw_cur = (match.group("cur") or match.group("cur2") or "€").upper()
            currency = CURRENCY_SYMBOLS.get(raw_cur) or {
                "EURO": "EUR",
                "EUROS": "EUR",
                "DOLLAR": "USD",
                "DOLLARS": "USD",
                "POUND": "GBP",
                "POUNDS": "GBP",
            }.get(raw_cur, raw_cur)
            basis = "gross" if GROSS_HINT.search(question) else "net"
            arguments = {basis: f"{amount:.2f}", "rate": f"{rate.normalize():f}"}
            if currency != "EUR":  # the calculator's default currency
                arguments["currency"] = currency
            return "vat-calculator", arguments
    if SAMPLE_QUESTION.search(question) and "audit-sample-size" in tool_names:
        confidence, tolerable = _first(CONFIDENCE.search(question)), _first(TOLERABLE.search(question))
        if confidence and tolerable:
            arguments = {"confidence": confidence, "tolerable_deviation_rate": tolerable}
            expected = _first(EXPECTED.search(question))
            if expected:
                arguments["expected_deviation_rate"] = expected
            return "audit-sample-size", arguments
    match = DEADLINE_QUESTION.search(question)
    if match and "business-day-deadline" in tool_names:
        days = int(match.group("days"))
        if match.group("dir").lower() == "before":
            days = -days
        return "business-day-deadline", {"start": match.group("date"), "business_days": days}
    if VALIDATE_HINT.search(question) and "vat-iban-validator" in tool_names:
        match = IBAN_CANDIDATE.search(question)
        if match and len(match.group(1).replace(" ", "")) >= 15:
            return "vat-iban-validator", {"value": match.group(1), "kind": "iban"}
        match = IBAN_PLACEHOLDER.search(question)
        if match:
            return "vat-iban-validator", {"value": match.group(), "kind": "iban"}
        match = VAT_ID_CANDIDATE.search(question) or VAT_ID_PLACEHOLDER.search(question)
        if match:
            return "vat-iban-validator", {"value": match.group(), "kind": "vat"}
    return None


def describe_result(name: str, arguments: dict, output: dict) -> str:
    """One plain sentence for a built-in tool's result."""
    if "error" in output:
        return f"The {name} tool could not compute this: {output['error']}"
    if name == "vat-calculator":
        cur = output.get("currency", "EUR")
        if output.get("basis") == "gross":
            return (
                f"A gross amount of {_money(output['gross'], cur)} at {output['rate']}% contains "
                f"{_money(output['vat'], cur)} of VAT (net {_money(output['net'], cur)})."
            )
        return (
            f"The VAT on {_money(output['net'], cur)} at {output['rate']}% is {_money(output['vat'], cur)} "
            f"(gross {_money(output['gross'], cur)})."
        )
    if name == "audit-sample-size":
        return (
            f"At {output['confidence']}% confidence and a tolerable deviation rate of "
            f"{output['tolerable_deviation_rate']}%, allowing {output['expected_deviations']} deviation(s), "
            f"the sample size is {output['sample_size']} items ({output['method']} method)."
        )
    if name == "business-day-deadline":
        return (
            f"{abs(output['business_days'])} business days {'after' if output['business_days'] >= 0 else 'before'} "
            f"{output['start']} is {output['weekday']} {output['deadline']}."
        )
    if name == "vat-iban-validator":
        label = "IBAN" if output.get("kind") == "iban" else "VAT number"
        if output.get("valid"):
            return f"{arguments.get('value')} is a valid {label} ({output.get('country')})."
        return f"{arguments.get('value')} is not a valid {label}: {output.get('reason')}"
    return f"The {name} tool returned: {json.dumps(output, ensure_ascii=False)}"


def _passage_text(passage) -> str:
    return passage["text"] if isinstance(passage, dict) else passage.text


def _passage_heading(passage) -> str:
    return passage.get("heading_path", "") if isinstance(passage, dict) else passage.heading_path


def split_sentences(text: str) -> list[str]:
    """The sentences of one line of prose, without their surrounding spaces: the live answer's rule
    (``agents.runtime.sentences``, one rule for both), so an abbreviation ("e.g.", "Art."), a single
    letter ("A. Smith"), an ordinal ("am 1. Januar") or a number ("1.000,00", "§ 13b") never ends one."""
    return [sentence.strip() for sentence in split(text) if sentence.strip()]


@dataclass(frozen=True, slots=True)
class Unit:
    """A sentence that may be quoted: a sentence of prose, a list item or a table row."""

    text: str
    #: The sentence introducing the list the item belongs to ("The supplier must still:"), if any.
    lead: str = ""


def units(text: str) -> list[Unit]:
    """The quotable sentences of a passage, in order (see the module docstring)."""
    found: list[Unit] = []
    lead = ""
    header: list[str] | None = None
    continued = True
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            header = None if not line else header
            continue
        if line.startswith("|"):
            continued, lead = False, ""
            flattened = _flattened_table(line)
            if flattened:
                header, rows = flattened[0], flattened[1:]
                found.extend(_row(header, cells) for cells in rows)
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if TABLE_RULE.match(line):
                continue
            if header is None:
                header = cells
                continue
            found.append(_row(header, cells))
            continue
        header = None
        item = LIST_ITEM.match(line)
        if item or (lead and line[:1].islower()):
            # A list item: marked, or (as a chunk keeps them) a paragraph in lower case after a lead-in.
            continued = False
            found.extend(Unit(s, lead) for s in split_sentences(line[item.end() if item else 0 :]))
            continue
        sentences = split_sentences(line)
        if continued and sentences[0][:1].islower():
            # The chunk starts mid-sentence or mid-list (the overlap with the previous chunk, which
            # holds the sentence or the list's lead-in): whole sentences only.
            sentences = sentences[1:]
            if not sentences:
                continue
        continued = False
        found.extend(Unit(s) for s in sentences)
        lead = sentences[-1] if sentences and sentences[-1].endswith(":") else ""
    return found


@lru_cache(maxsize=4096)
def _analysed(text: str) -> tuple[tuple[Unit, frozenset[str], frozenset[str]], ...]:
    """The units of a passage's text with their terms and their lead-in's terms. Kept for the passages
    seen last: the same chunks answer many questions, and stemming a passage anew costs about 2 ms."""
    return tuple((u, _terms_of(u.text), _terms_of(u.lead) if u.lead else frozenset()) for u in units(text))


@lru_cache(maxsize=16_384)
def _terms_of(text: str) -> frozenset[str]:
    return frozenset(terms(text))


def _row(header: list[str], cells: list[str]) -> Unit:
    """A table row as a sentence: "Member state: Spain; Standard rate: 21%; …"."""
    return Unit("; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False) if c) + ".")


def _flattened_table(line: str) -> list[list[str]] | None:
    """The rows (heading row first) of a Markdown table whose line breaks were lost
    ("| a | b | |---|---| | 1 | 2 |", as a chunk's whitespace is folded), or None."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    rule = next((i for i, c in enumerate(cells) if re.fullmatch(r":?-{2,}:?", c)), None)
    if rule is None or rule < 2 or cells[rule - 1]:
        return None
    width = rule - 1
    if cells[rule : rule + width] != [c for c in cells[rule : rule + width] if re.fullmatch(r":?-{2,}:?", c)]:
        return None
    rows = [cells[:width]]
    for start in range(rule + width + 1, len(cells), width + 1):
        rows.append(cells[start : start + width])
    return rows if len(rows) > 1 else None


def _facets(found: set[str]) -> list[set[str]]:
    """The countries named in ``found`` (terms), then the value of each of ``FACETS`` named."""
    named = [{t for t in found if t.startswith(COUNTRY)}]
    named += [{value for value, names in facet.items() if names & found} for facet in FACETS]
    return named


@dataclass(slots=True)
class _Candidate:
    score: float
    passage: int  # its number, from 1, as shown to the model
    position: int  # its place in the passage
    unit: Unit


def extract_answer(question: str, passages: list) -> tuple[str, list[int]]:
    """Quoted sentences from the passages with their passages' numbers, and the numbers cited: see
    the module docstring."""
    wanted = terms(question)
    if not wanted:
        return "", []
    question_facets = _facets(wanted)
    rows = []  # (passage number, position, unit, own terms, lead terms, heading terms)
    for number, passage in enumerate(passages[:MAX_PASSAGES], start=1):
        heading = _terms_of(_passage_heading(passage)) & wanted
        for position, (unit, own, lead_terms) in enumerate(_analysed(_passage_text(passage))):
            lead = (lead_terms & wanted) - own
            rows.append((number, position, unit, own, lead, heading))
    if not rows:
        return "", []
    # A question term's weight: how rare it is among the passages retrieved.
    found_in: dict[str, set[int]] = {}
    for row in rows:
        for term in row[3] & wanted:
            found_in.setdefault(term, set()).add(row[0])
    read = len({row[0] for row in rows})
    weight = {term: math.log(1 + read / len(numbers)) for term, numbers in found_in.items()}
    candidates = []
    for number, position, unit, own, lead, heading in rows:
        matched = own & wanted
        if not matched:
            continue
        score = sum(weight[t] for t in matched)
        score += LEAD_WEIGHT * sum(weight.get(t, 0) for t in lead)
        score += HEADING_WEIGHT * sum(weight.get(t, 0) for t in heading)
        for asked, named in zip(question_facets, _facets(own), strict=True):
            if asked - named and named - asked:
                score *= OTHER_CASE_FACTOR  # about another case than the question's
                break
        candidates.append(_Candidate(score, number, position, unit))
    if not candidates:
        return "", []
    candidates.sort(key=lambda c: (-c.score, c.passage, c.position))
    floor = candidates[0].score * RELATIVE_THRESHOLD
    chosen: dict[int, list[_Candidate]] = {}
    count = 0
    for candidate in candidates:
        if candidate.score < floor or count == MAX_SENTENCES:
            break
        group = chosen.setdefault(candidate.passage, [])
        if len(group) < SENTENCES_PER_PASSAGE:
            group.append(candidate)
            count += 1
    lines: list[str] = []
    for number, group in chosen.items():  # the passage of the best sentence first
        group.sort(key=lambda c: c.position)
        parts: list[str] = []
        for candidate in group:
            lead = candidate.unit.lead
            if lead and lead not in parts:
                parts.append(lead)
            parts.append(candidate.unit.text)
        quote = " ".join(parts)
        if quote.endswith((";", ",", ":")):  # the last item of a list quoted
            quote = quote[:-1] + "."
        if len(quote) > MAX_QUOTE_CHARS:
            quote = quote[: MAX_QUOTE_CHARS - 3].rsplit(" ", 1)[0] + "…"
        lines.append(f"- {quote} [{number}]")
    return "\n".join(lines), list(chosen)


class OfflineProvider(Provider):
    """See the module docstring. ``stream`` yields the answer word by word, then the response."""

    kind = "offline"
    label = LABEL

    def respond(self, request: ModelRequest) -> ModelResponse:
        tool_names = {t["function"]["name"] for t in request.tools}
        tool_messages = [m for m in request.messages if m.get("role") == "tool"]
        if tool_messages:
            return self._after_tools(request, tool_messages)
        planned = plan_tool_call(request.question, tool_names)
        if planned is not None:
            name, arguments = planned
            call = ToolCall(id="call_1", name=name, arguments=json.dumps(arguments))
            return self._response(request, "", [call], "tool_calls")
        body, _ = extract_answer(request.question, request.passages)
        if body:
            text = f"{LABEL} — from the firm's documents:\n{body}"
        elif request.passages:
            text = (
                f"{LABEL}: none of the retrieved passages answers this question, and I cannot "
                "answer from general knowledge. Rephrase it, or ask a colleague."
            )
        else:
            text = (
                f"{LABEL}: I found nothing relevant in the knowledge assigned to this agent, and I cannot "
                "answer from general knowledge. Rephrase the question, or add the guidance it needs."
            )
        return self._response(request, text, [], "stop")

    def _after_tools(self, request: ModelRequest, tool_messages: list[dict]) -> ModelResponse:
        calls = {}
        for message in request.messages:
            for call in message.get("tool_calls") or []:
                calls[call["id"]] = call["function"]
        sentences = []
        for message in tool_messages:
            function = calls.get(message.get("tool_call_id"), {"name": "tool", "arguments": "{}"})
            try:
                output = json.loads(message.get("content") or "{}")
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                output, arguments = {"error": "unreadable result"}, {}
            if not isinstance(output, dict):
                output = {"result": output}
            sentences.append(describe_result(function["name"], arguments, output))
        body, _ = extract_answer(request.question, request.passages)
        text = f"{LABEL}, using the firm's calculation tools: " + " ".join(sentences)
        if body:
            text += "\n\nFrom the firm's documents:\n" + body
        return self._response(request, text, [], "stop")

    def _response(self, request, content, calls, finish) -> ModelResponse:
        if request.max_tokens and count_tokens(content) > request.max_tokens:
            # The answer is cut at the requested length (by the same estimate), as a model would.
            content, finish = content[: request.max_tokens * 4].rstrip(), "length"
        prompt = sum(count_tokens(str(m.get("content") or "")) for m in request.messages)
        return ModelResponse(
            content=content,
            tool_calls=calls,
            tokens_in=prompt,
            tokens_out=count_tokens(content) + sum(count_tokens(c.arguments) for c in calls),
            finish_reason=finish,
            model="offline-extractive",
        )

    def check_connection(self) -> ConnectionCheck:
        """Nothing to connect to (no network, no key): the engine is asked one question here, and
        what it answers, and how fast, is the result."""
        started = time.monotonic()
        response = self.respond(
            ModelRequest(messages=[{"role": "user", "content": CHECK_QUESTION}], question=CHECK_QUESTION)
        )
        return ConnectionCheck(
            ok=True,
            method="offline",
            latency_ms=(time.monotonic() - started) * 1000,
            models=[response.model],
            answer=response.content,
        )

    def stream(self, request: ModelRequest, *, stream: bool = True) -> Iterator[str | ModelResponse]:
        response = self.respond(request)
        if stream and response.content:
            yield from re.findall(r"\S+\s*|\s+", response.content)
        yield response
