"""``prompt_injection``: text that tries to override or reveal the instructions, or to take over the
assistant — typed by a user or hidden in a retrieved document (indirect injection).

The text is normalised first (``normalize.fold``: case, accents, zero-width and look-alike characters,
leetspeak, letters spelt out one by one). Weighted signals are then matched on that view, a few strong
ones also on the letters-only view (words split by spaces or punctuation), and base64 fragments are
decoded and scanned again. The score is ``1 - Π(1 - weight)`` over the distinct signals; the check
triggers when it reaches ``threshold``. The verdict lists every signal with its weight and span.

Configuration::

    {"threshold": 0.5,              # 0 < threshold <= 1
     "decode_base64": true,
     "extra_phrases": ["wire the retainer"]}   # matched on the normalised text, weight 1
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from guardrails.checks.base import (
    Check,
    ConfigError,
    Finding,
    get_bool,
    get_number,
    get_string_list,
    reject_unknown,
)
from guardrails.checks.normalize import View, fold, squash

_SEP = r"[\W_]*"  # between words: spaces, punctuation, nothing at all (words joined by the normaliser)
_VERB_OVERRIDE = (
    r"(?:ignore|disregard|forget|skip|bypass|override|overrule|neglect|drop|abandon|cancel|discard)"
)
_QUALIFIER = (
    r"(?:all|any|every|the|your|my|of|these|those|previous|prior|above|earlier|preceding|foregoing|"
    r"initial|original|system|developer|existing|current|given|old|default|standing)"
)
_STRONG_QUALIFIER = (
    r"(?:all|any|every|your|previous|prior|above|earlier|preceding|foregoing|initial|original|system|"
    r"developer|existing|old|default|standing)"
)
_RULES = (
    r"(?:instructions?|prompts?|rules|directives?|guidelines|commands|orders|programming|guardrails|"
    r"restrictions|constraints|policies|safeguards|context|messages?|guidance)"
)
_SECRET = r"(?:system|initial|original|hidden|secret|internal|developer|full|first|pre-?prompt)"


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# (name, weight, pattern on the normalised view)
SIGNALS: list[tuple[str, float, re.Pattern[str]]] = [
    (
        "override_instructions",
        1.0,
        _p(
            rf"\b{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_STRONG_QUALIFIER}{_SEP}"
            rf"(?:{_QUALIFIER}{_SEP}){{0,2}}{_RULES}"
            rf"|\b{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_RULES}{_SEP}"
            r"(?:above|before|so far|you (?:were|have been) given|given (?:to you|above|earlier))"
        ),
    ),
    ("ignore_instructions_weak", 0.45, _p(rf"\b{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_RULES}")),
    (
        "reveal_system_prompt",
        0.9,
        _p(
            r"\b(?:show|reveal|print|repeat|display|output|echo|leak|dump|disclose|share|write out|spell out|"
            r"recite|paste|give|tell|send|list|return|provide|translate)"
            rf"{_SEP}(?:me{_SEP}|us{_SEP})?(?:(?:all|exactly|verbatim|word for word|everything in|the text of|"
            rf"the contents of|what is in){_SEP})?(?:your|the|its|my)?{_SEP}(?:{_SECRET}{_SEP})+"
            r"(?:prompts?|instructions?|message|configuration|rules|guidelines)"
        ),
    ),
    (
        "ask_system_prompt",
        0.7,
        _p(
            rf"\bwhat{_SEP}(?:is|are|was|were){_SEP}(?:your|the){_SEP}(?:{_SECRET}{_SEP})*"
            r"(?:system prompt|instructions|initial prompt|rules you (?:follow|were given))"
            r"|\b(?:system|initial|hidden|secret)\W*prompt\W*(?:verbatim|word for word|in full)"
            r"|\b(?:everything|all|the text|the words) (?:above|before) (?:this|the first) (?:line|message)"
        ),
    ),
    (
        "role_change",
        0.7,
        _p(
            r"\byou\W*are\W*(?:now|no longer|from now on)\b"
            r"|\bfrom\W*now\W*on\W*(?:you|your|act|respond|answer|behave)"
            r"|\b(?:pretend|imagine)\W*(?:to\W*be|you\W*are|that\W*you)"
            r"|\b(?:roleplay|role-play|role play)\W*as\b"
            r"|\byour\W*new\W*(?:role|persona|identity|name|task|instructions|goal|purpose)\b"
            r"|\b(?:switch|change)\W*(?:to|into)\W*\w+\W*mode\b"
        ),
    ),
    (
        "act_as",
        0.3,
        _p(
            r"\b(?:act|behave|respond|answer)\W*(?:as|like)\W*(?:an?|my|the)?\W*(?:unrestricted|unfiltered|evil|different|new|hacker|dan)\b|\bact as\b"
        ),
    ),
    (
        "jailbreak_persona",
        0.9,
        _p(
            r"\b(?:jailbreak|jailbroken|developer\W*mode|god\W*mode|dan\W*mode|do\W*anything\W*now|"
            r"unrestricted\W*mode|sudo\W*mode|anti\W*dan|evil\W*(?:confidant|assistant|bot))"
            r"|\bdan\b\W*(?:prompt|mode|which stands)"
        ),
    ),
    (
        "no_restrictions",
        0.6,
        _p(
            r"\b(?:without|no|free (?:of|from)|not bound by|ignoring|ignore) (?:any |all |your )?"
            r"(?:restrictions|filters|filtering|censorship|limitations|guardrails|safety (?:rules|guidelines)|"
            r"ethical (?:guidelines|constraints)|content polic(?:y|ies))"
            r"|\b(?:no longer|not) (?:have to |need to )?(?:follow|obey|bound by|restricted by) "
            r"(?:any |the |your )?(?:rules|guidelines|policies|instructions|restrictions)"
        ),
    ),
    (
        "new_instructions",
        0.6,
        _p(
            r"\b(?:new|updated|revised|real|actual|true|additional|important|secret|hidden|override)\W*"
            r"(?:instructions?|system prompt|directives?|orders)\s*[:\-]"
            r"|\binstead\W*(?:you|your)\W*(?:will|must|should|shall|are to)\b"
            r"|\b(?:begin|start|end)\W*(?:of\W*)?(?:system|new|hidden)\W*(?:prompt|instructions?)"
        ),
    ),
    (
        "fake_delimiter",
        0.7,
        _p(
            r"<\|?\s*(?:im_start|im_end|system|endoftext|assistant|user)\s*\|?>"
            r"|\[/?(?:inst|system|sys)\]|<</?sys>>|</?system>"
            r"|(?:^|\n)\s*(?:#{2,}\s*)?(?:system|developer)\s*(?:prompt|message)?\s*:"
            r"|(?:^|\n)\s*-{3,}\s*(?:end|begin)"
        ),
    ),
    (
        "addressed_to_ai",
        0.65,
        _p(
            r"\b(?:ai|llm|language model|chatbot|chat bot|assistant|bot|gpt|chatgpt|claude|copilot|agent)s?\b"
            r"\W*(?:\w+\W+){0,2}(?:reading|processing|summari[sz]ing|analy[sz]ing|parsing|that reads?|who reads?|"
            r"which reads?|ingesting|retrieving)\b"
            r"|\b(?:note|message|instruction|attention|notice)\W*(?:to|for)\W*(?:the\W*|any\W*|all\W*)?"
            r"(?:ai|llm|language model|assistant|chatbot|bot|model|agent)s?\b"
            r"|\bif\W*you\W*are\W*(?:an?\W*)?(?:ai|llm|language model|assistant|chatbot|bot)\b"
            r"|\b(?:dear|hey|hello|attention)\W*(?:ai|llm|assistant|chatbot|model|gpt|claude)\b"
        ),
    ),
    (
        "instruct_user_action",
        0.45,
        _p(
            r"\b(?:must|should|shall|have to|need to|always|now)\W*(?:tell|instruct|ask|advise|urge|direct|inform|"
            r"remind|convince|persuade)\W*(?:the\W*)?(?:user|reader|client|customer)s?\b"
            r"|\b(?:tell|instruct|ask|urge|direct|convince|persuade)\W*(?:the\W*)?(?:user|reader|client|customer)s?"
            r"\W*to\W*(?:wire|transfer|send|pay|click|visit|call|email|share|provide|enter|reset|disable)"
        ),
    ),
    (
        "move_money",
        0.35,
        _p(
            r"\b(?:wire|transfer|send|remit|move|pay)\W*(?:the\W*|all\W*|their\W*|your\W*|any\W*)?"
            r"(?:funds|money|payment|balance|deposit|fees?|amount|crypto|bitcoin)\W*(?:immediately\W*)?"
            r"(?:to|into|via)\b"
            r"|\b(?:new|updated|changed|different)\W*(?:bank|account|wallet|iban)\W*(?:details|number)?\W*"
            r"(?:is|are|:)"
        ),
    ),
    (
        "conceal_from_user",
        0.55,
        _p(
            r"\b(?:do\W*not|don'?t|never|without)\W*(?:tell|inform|mention(?:ing)?|reveal(?:ing)?|alert(?:ing)?|"
            r"notify(?:ing)?|let)\W*(?:this\W*|it\W*|that\W*)?(?:to\W*)?(?:the\W*|your\W*)?(?:user|human|operator|"
            r"client|anyone|them)\b"
            r"|\b(?:secretly|covertly|silently|quietly)\W*(?:send|include|add|insert|append|forward|call|use)"
        ),
    ),
    (
        "exfiltration",
        0.6,
        _p(
            r"\b(?:send|forward|post|upload|email|leak|exfiltrate|copy)\W*(?:the\W*|all\W*|this\W*|your\W*|our\W*)?"
            r"(?:conversation|chat\W*history|history|context|messages|data|documents|credentials|api\W*keys?|"
            r"passwords?|secrets|memory)\W*(?:to|into)\b"
            r"|!\[[^\]]*\]\(https?://[^)]*[?&][^)]*\)"
            r"|\b(?:call|invoke|use|run|trigger|execute)\W*(?:the\W*)?(?:\w+\W*)?(?:tool|function|plugin|api)\W*"
            r"(?:with|to)\W*(?:send|transfer|delete|wire|pay)"
        ),
    ),
    (
        "tool_abuse",
        0.5,
        _p(
            r"\b(?:you\W*(?:must|should|will)|always|immediately)\W*(?:call|invoke|use|run|execute)\W*"
            r"(?:the\W*)?[\w\-]+\W*(?:tool|function)"
        ),
    ),
]

# Strong signals checked on the letters-only view, which joins words split by spaces or punctuation.
_SQUASHED_OVERRIDE = (
    r"(?:ignore|disregard|forget|bypass|override)(?:all|any|every)?(?:the|your|my|of)*"
    r"(?:previous|prior|above|earlier|preceding|system|initial|original)"
    r"(?:instructions?|prompts?|directives?|guidelines|rules)"
)
SQUASHED_SIGNALS: list[tuple[str, float, re.Pattern[str]]] = [
    ("override_instructions", 1.0, _p(_SQUASHED_OVERRIDE)),
    (
        "reveal_system_prompt",
        0.9,
        _p(
            r"(?:show|reveal|print|repeat|display|output|leak|dump|disclose)(?:me|us)?(?:your|the)"
            r"(?:full|entire|hidden|secret|original|initial)?(?:systemprompt|initialprompt|hiddenprompt|"
            r"systeminstructions|secretinstructions)"
        ),
    ),
    ("jailbreak_persona", 0.9, _p(r"developermode|doanythingnow|jailbreak")),
]

_BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e\t\r\n]")


def _score(weights: list[float]) -> float:
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


class PromptInjectionCheck(Check):
    kind = "prompt_injection"
    actions = frozenset({"block", "warn"})

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"threshold", "decode_base64", "extra_phrases"}, errors)
        threshold = get_number(config, "threshold", 0.5, errors, minimum=0.05, maximum=1.0)
        decode = get_bool(config, "decode_base64", True, errors)
        phrases = get_string_list(config, "extra_phrases", errors, max_items=200)
        if errors:
            raise ConfigError(errors)
        return {"threshold": threshold, "decode_base64": decode, "extra_phrases": phrases}

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.threshold: float = config["threshold"]
        self.decode_base64: bool = config["decode_base64"]
        self.extra: re.Pattern[str] | None = None
        if config["extra_phrases"]:
            # The phrases go through the same normalisation as the text.
            folded = [re.escape(fold(p).text).replace(r"\ ", _SEP) for p in config["extra_phrases"]]
            self.extra = re.compile(r"(?<!\w)(?:" + "|".join(folded) + r")(?!\w)")

    def scan(self, text: str, *, depth: int = 0) -> list[dict[str, Any]]:
        """The signals in ``text``: ``{"name", "weight", "start", "end"}`` (spans in ``text``)."""
        view = fold(text)
        found: dict[str, dict[str, Any]] = {}

        def add(name: str, weight: float, span: tuple[int, int], via: str | None = None) -> None:
            if name in found and found[name]["weight"] >= weight:
                return
            signal = {"name": name, "weight": weight, "start": span[0], "end": span[1]}
            if via:
                signal["via"] = via
            found[name] = signal

        for name, weight, pattern in SIGNALS:
            match = pattern.search(view.text)
            if match:
                add(name, weight, view.span(*match.span()))
        if self.extra is not None:
            match = self.extra.search(view.text)
            if match:
                add("configured_phrase", 1.0, view.span(*match.span()))
        squashed: View | None = None
        for name, weight, pattern in SQUASHED_SIGNALS:
            if name in found:
                continue
            if squashed is None:
                squashed = squash(view)
            match = pattern.search(squashed.text)
            if match:
                add(name, weight, squashed.span(*match.span()), via="split_words")
        if "override_instructions" in found:
            found.pop("ignore_instructions_weak", None)
        if self.decode_base64 and depth == 0:
            for fragment in _BASE64_RE.finditer(text):
                decoded = self._decode(fragment.group())
                if decoded is None:
                    continue
                for signal in self.scan(decoded, depth=1):
                    add(signal["name"], signal["weight"], fragment.span(), via="base64")
        if view.text != text.lower() and found:
            # The text only matched once normalised: disguise is itself a signal.
            plain = text.lower()
            if not any(p.search(plain) for _, _, p in SIGNALS[:3]):
                add("obfuscation", 0.2, (found[next(iter(found))]["start"], found[next(iter(found))]["end"]))
        return sorted(found.values(), key=lambda s: (s["start"], s["name"]))

    @staticmethod
    def _decode(fragment: str) -> str | None:
        padded = fragment + "=" * (-len(fragment) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if len(decoded) < 8 or len(_PRINTABLE_RE.findall(decoded)) < 0.9 * len(decoded) or " " not in decoded:
            return None
        return decoded

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        signals = self.scan(text)
        score = _score([s["weight"] for s in signals])
        details = {"score": score, "threshold": self.threshold}
        if score >= self.threshold:
            names = ", ".join(s["name"] for s in signals)
            where = "retrieved text" if stage == "retrieval" else "text"
            return Finding(
                True,
                f"Possible prompt injection in the {where} (score {score:.2f} ≥ {self.threshold:.2f}): {names}.",
                spans=[(s["start"], s["end"], s["name"]) for s in signals],
                signals=signals,
                details=details,
            )
        message = "No prompt injection detected."
        if signals:
            message = f"Weak signals only (score {score:.2f} < {self.threshold:.2f})."
        return Finding(False, message, signals=signals, details=details)
