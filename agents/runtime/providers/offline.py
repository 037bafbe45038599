"""The offline engine: deterministic, extractive, no network and no key.

It is not a generative model and says so. It answers from the retrieved passages: for each of the
top passages it quotes the sentences that share the most words with the question, numbered [1], [2]…
as the passages were given. When no passage shares a meaningful word with the question it says
plainly that it found nothing relevant. When the question clearly asks for a calculation it can parse
(VAT on an amount at a rate, an audit sample size, a business-day deadline, checking an IBAN or VAT
number) and the matching built-in tool is assigned, it calls that tool and reports the result.
The same input always gives the same output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from agents.runtime.providers.base import ModelRequest, ModelResponse, Provider, ToolCall

LABEL = "Offline engine (extractive; not a generative model)"
MAX_PASSAGES = 3
SENTENCES_PER_PASSAGE = 2

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not now of off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours must may shall""".split()
)
WORD = re.compile(r"[^\W_]+", re.UNICODE)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(§])")

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


def terms(text: str) -> set[str]:
    """The lowercased words of ``text`` longer than two letters, stopwords left out."""
    return {w for w in map(str.lower, set(WORD.findall(text))) if len(w) > 2} - STOPWORDS


def overlap(wanted: set[str], sentence: str) -> int:
    """``len(wanted & terms(sentence))`` for ``wanted`` from ``terms``: three times faster for an ASCII
    sentence, where lowercasing keeps every character in place and ``WORD`` is a run of ASCII letters
    and digits, so a wanted word is there if it occurs with no letter or digit on either side."""
    if not sentence.isascii():
        return len(wanted & terms(sentence))
    lowered = sentence.lower()
    found = 0
    for word in wanted:
        at = lowered.find(word)
        while at != -1:
            end = at + len(word)
            if (at == 0 or not lowered[at - 1].isalnum()) and (
                end == len(lowered) or not lowered[end].isalnum()
            ):
                found += 1
                break
            at = lowered.find(word, at + 1)
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


def extract_answer(question: str, passages: list) -> tuple[str, list[int]]:
    """Quoted sentences from the top passages with their numbers, and the numbers cited."""
    wanted = terms(question)
    lines: list[str] = []
    cited: list[int] = []
    for number, passage in enumerate(passages[:MAX_PASSAGES], start=1):
        sentences = [s.strip() for s in SENTENCE.split(" ".join(_passage_text(passage).split())) if s.strip()]
        if len(sentences) > 1 and sentences[0][:1].islower():
            # A chunk that starts mid-sentence (the overlap with the previous chunk): quote whole sentences.
            sentences = sentences[1:]
        scored = [(overlap(wanted, s), -i, s) for i, s in enumerate(sentences)]
        scored = [item for item in scored if item[0] > 0]
        if not scored:
            continue
        best = sorted(scored, reverse=True)[:SENTENCES_PER_PASSAGE]
        best.sort(key=lambda item: -item[1])  # back into document order
        quote = " ".join(s for _, _, s in best)
        if len(quote) > 600:
            quote = quote[:597].rsplit(" ", 1)[0] + "…"
        lines.append(f"- {quote} [{number}]")
        cited.append(number)
    return "\n".join(lines), cited


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

    def stream(self, request: ModelRequest, *, stream: bool = True) -> Iterator[str | ModelResponse]:
        response = self.respond(request)
        if stream and response.content:
            yield from re.findall(r"\S+\s*|\s+", response.content)
        yield response
