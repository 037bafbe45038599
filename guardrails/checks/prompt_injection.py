"""``prompt_injection``: text that tries to override or reveal the instructions, or to take over the
assistant — typed by a user or hidden in a retrieved document (indirect injection).

The text is normalised first (``normalize.fold``: case, accents, zero-width and look-alike characters,
leetspeak, letters spelt out one by one). Then, each with a weight:

- phrase signals (``SIGNAL_SPECS``), tried only where the normalised text has one of their first words,
  so the text is scanned once for words whatever the number of signals;
- concept signals (``CONCEPT_RULES``): concepts that co-occur in one sentence (an override verb, the
  assistant's instructions, "your"…), which catch phrasings no fixed phrase foresaw;
- markup signals (``SYMBOL_SIGNALS``): chat-template markers, fake conversation turns, image links
  that leak data;
- a few strong phrases on the letters-only view (words split by spaces or punctuation);
- base64 fragments, decoded and scanned again.

The score is ``1 - Π(1 - weight)`` over the distinct signals; the check triggers when it reaches
``threshold``. The verdict lists every signal with its weight and span.

What it is not: a model. Rules recognise the families of attack they describe, in many disguises, but
a new phrasing may pass; ``bench/guardrails.py`` measures both on labelled and held-out lines.

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
from typing import Any, ClassVar

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
_OVERRIDE_WORDS = (
    "ignore", "ignoring", "disregard", "forget", "skip", "bypass", "override", "overrule", "neglect",
    "drop", "abandon", "cancel", "discard", "overlook", "set", "put", "stop", "do", "don", "dont",
)  # fmt: skip
_VERB_OVERRIDE = (
    r"(?:ignor(?:e|ing)|disregard|forget|skip|bypass|override|overrule|neglect|drop|abandon|cancel|discard|"
    r"overlook|(?:set|put)\W*aside|stop\W*(?:following|obeying)|(?:do\W*not|don'?t|dont)\W*(?:follow|obey))"
)
_QUALIFIER = (
    r"(?:all|any|every|the|your|my|of|these|those|previous|prior|above|earlier|preceding|foregoing|"
    r"initial|original|system|developer|existing|current|given|old|default|standing|safety|content|"
    r"security|ethical|firm'?s?|company|operator|compliance|usual|normal|standard|internal)"
)
_STRONG_QUALIFIER = (
    r"(?:all|any|every|your|previous|prior|above|earlier|preceding|foregoing|initial|original|system|"
    r"developer|existing|old|default|standing|firm'?s|company'?s|operator'?s|developers'?s?)"
)
_RULES = (
    r"(?:instructions?|prompts?|rules|directives?|directions|guidelines|commands|orders|programming|"
    r"guardrails|restrictions|constraints|policies|safeguards|context|messages?|guidance|training)"
)
_SECRET = r"(?:system|initial|original|hidden|secret|internal|developer|full|first|pre-?prompt)"
_REVEAL_WORDS = (
    "show", "reveal", "print", "repeat", "display", "output", "echo", "leak", "dump", "disclose", "share",
    "write", "spell", "recite", "paste", "give", "tell", "send", "list", "return", "provide", "translate",
    "read", "copy",
)  # fmt: skip
_REVEAL = r"(?:" + "|".join(_REVEAL_WORDS) + r")(?:s|ing|ed)?(?:\W*(?:out|back))?"
_AI_WORDS = (
    "ai", "ais", "llm", "llms", "language", "chatbot", "chatbots", "chat", "assistant", "assistants", "bot",
    "bots", "gpt", "chatgpt", "claude", "copilot", "agent", "agents", "model", "models",
)  # fmt: skip
_AI = r"(?:ai|llm|language\W*model|chat\W*bot|chatbot|assistant|bot|gpt|chatgpt|claude|copilot|agent|model)s?"


# Each signal: (name, weight, alternatives); an alternative is (first words, pattern). A pattern is
# tried with ``match`` only where a word of the normalised text is one of its first words, so the
# whole text is scanned once, for words, whatever the number of signals.
SignalSpec = tuple[str, float, list[tuple[tuple[str, ...], str]]]

SIGNAL_SPECS: list[SignalSpec] = [
    (
        "override_instructions",
        1.0,
        [
            (
                _OVERRIDE_WORDS,
                rf"{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_STRONG_QUALIFIER}{_SEP}"
                rf"(?:{_QUALIFIER}{_SEP}){{0,2}}{_RULES}",
            ),
            (
                _OVERRIDE_WORDS,
                rf"{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_RULES}{_SEP}"
                r"(?:above|before|so far|you (?:were|have been|got) given|given (?:to you|above|earlier)|you got)",
            ),
            (
                _OVERRIDE_WORDS,
                rf"{_VERB_OVERRIDE}{_SEP}(?:everything|all|anything|whatever)\W*(?:\w+\W+){{0,3}}"
                r"(?:told|given|taught|configured|set\W*up|programmed|instructed|trained|said\W*(?:above|before)|"
                r"written\W*(?:above|before)|stated\W*(?:above|before))",
            ),
        ],
    ),
    (
        "ignore_the_above",
        0.8,
        [
            (
                _OVERRIDE_WORDS,
                rf"{_VERB_OVERRIDE}\W*(?:all\W*)?(?:of\W*)?(?:the\W*|that\W*)?(?:above|foregoing|preceding|previous|"
                r"prior)(?:\W*(?:text|content|message|messages|conversation|prompt))?\s*(?:and\b|[,.;:!]|$)",
            ),
            (
                _OVERRIDE_WORDS,
                rf"{_VERB_OVERRIDE}\W*(?:all\W*)?(?:of\W*)?(?:the\W*|my\W*|our\W*)?(?:last|previous|prior|above|earlier)\W*"
                r"(?:few\W*|\d+\W*|two\W*|three\W*)?(?:messages|lines|paragraphs|turns|exchanges|replies|answers)",
            ),
        ],
    ),
    (
        "ignore_instructions_weak",
        0.45,
        [(_OVERRIDE_WORDS, rf"{_VERB_OVERRIDE}{_SEP}(?:{_QUALIFIER}{_SEP}){{0,3}}{_RULES}")],
    ),
    (
        "reveal_system_prompt",
        0.9,
        [
            (
                _REVEAL_WORDS,
                rf"{_REVEAL}{_SEP}(?:me{_SEP}|us{_SEP})?(?:(?:all|exactly|verbatim|word for word|everything in|"
                rf"the text of|the contents of|what is in){_SEP})?(?:your|the|its|my)?{_SEP}(?:{_SECRET}{_SEP})+"
                r"(?:prompts?|instructions?|message|configuration|rules|guidelines)",
            ),
            (
                _REVEAL_WORDS,
                rf"{_REVEAL}\W*(?:me\W*|us\W*)?(?:the\W*)?(?:first|last|opening|full|entire|exact)?\W*(?:\d+\W*)?"
                r"(?:\w+\W+)?(?:words|lines|sentences|characters|paragraphs|part|section)\W*of\W*(?:your|the)\W*"
                r"(?:system|initial|hidden|original|secret)?\W*(?:prompt|message|instructions)",
            ),
            (
                _REVEAL_WORDS,
                rf"{_REVEAL}\W*(?:me\W*|us\W*)?(?:the|your)\W*(?:\w+\W+)?(?:prompt|instructions|rules)\W*"
                r"(?:that|which|you)\W*(?:\w+\W+){0,3}(?:wrote|gave|given|were|was|received|got|follow)",
            ),
        ],
    ),
    (
        "system_prompt_mention",
        0.55,
        [
            (
                ("your",),
                r"your\W*(?:system|hidden|secret|initial|original|developer)\W*(?:prompt|message|"
                r"instructions|configuration)",
            ),
        ],
    ),
    (
        "ask_system_prompt",
        0.7,
        [
            (
                ("what",),
                rf"what{_SEP}(?:is|are|was|were){_SEP}(?:your{_SEP}(?:{_SECRET}{_SEP})*|the{_SEP}(?:{_SECRET}{_SEP})+)"
                r"(?:system prompt|instructions|initial prompt|rules you (?:follow|were given))",
            ),
            (
                ("what",),
                r"what\W*(?:is|are|was|were)\W*the\W*(?:instructions|rules|guidelines|prompt)\W*(?:that\W*)?you\W*"
                r"(?:got|received|were\W*given|have\W*been\W*given|follow|run\W*under)",
            ),
            (
                ("what", "which"),
                r"(?:what|which)\W*(?:instructions|rules|guidelines|prompts?|directives)\W*(?:were\W*you|"
                r"you\W*were|have\W*you\W*been|did\W*you\W*get|you\W*got)\W*(?:given|told|provided)?",
            ),
            (
                ("system", "initial", "hidden", "secret"),
                r"(?:system|initial|hidden|secret)\W*prompt\W*(?:verbatim|word for word|in full)",
            ),
            (
                ("repeat", "print", "output", "show", "display", "copy", "dump", "list", "reveal"),
                r"(?:repeat|print|output|show|display|copy|dump|list|reveal)\W*(?:me\W*)?(?:all\W*)?(?:the\W*)?"
                r"(?:text|words|everything|content|lines?|messages?)\W*(?:above|before|in\W*your\W*(?:context|memory)|"
                r"from\W*your\W*(?:context|memory))",
            ),
            (("context",), r"context\W*window"),
            (
                ("what",),
                r"what\W*(?:were|have|had)\W*you\W*(?:been\W*)?(?:\w+\W+)?(?:told|instructed|programmed|trained)\W*"
                r"(?:to\W*(?:do|say)|by)",
            ),
        ],
    ),
    (
        "role_change",
        0.7,
        [
            (("you",), r"you\W*are\W*(?:no\W*longer|from\W*now\W*on)\b"),
            (("from",), r"from\W*(?:now|here)\W*on\W*,?\W*(?:you|your|act|respond|answer|behave|reply)\b"),
            (("switch", "swap", "change", "reverse"), r"(?:switch|swap|change|reverse)\W*roles\b"),
            (("version",), r"version\W*of\W*you\b"),
            (("pretend", "imagine"), r"(?:pretend|imagine)\W*(?:to\W*be|you\W*are|that\W*you|you\W*were)\b"),
            (("roleplay", "role"), r"(?:roleplay|role\W*play)\W*as\b"),
            (("your",), r"your\W*new\W*(?:role|persona|identity|name|task|instructions|goal|purpose|job)\b"),
            (("switch", "change"), r"(?:switch|change)\W*(?:to|into)\W*\w+\W*mode\b"),
            (("let",), r"let'?s\W*play\W*a\W*game"),
            (("new",), r"new\W*game\b"),
            (
                ("if", "what"),
                r"(?:if|what\W*would\W*(?:you|your\W*answer)\W*(?:\w+\W+){0,2}if)\W*you\W*(?:were\W*not|weren'?t|"
                r"did\W*not\W*have\W*to|didn'?t\W*have\W*to|had\W*no)\W*(?:\w+\W+){0,2}"
                r"(?:required|obliged|bound|rules|restrictions|guidelines|filters|follow)",
            ),
            (("real",), r"real\W*(?:user|admin|operator|instructions?)\W*(?:is|are)\b"),
            (("raw", "debug", "god", "admin", "root"), r"(?:raw|debug|admin|god|root)\W*mode\b"),
            (("break", "drop"), r"(?:break|drop)\W*(?:out\W*of\W*)?(?:character|the\W*act|your\W*role)\b"),
            (
                ("stop", "quit"),
                r"(?:stop|quit)\W*(?:being|acting\W*as|playing)\W*(?:an?\W*|the\W*|my\W*)?\w+",
            ),
            (("you",), r"you\W*will\W*now\W*(?:follow|obey|act|behave|respond|answer|be)\b"),
            (("pretend",), r"pretend\W*(?:that|the|we|it|this)\b"),
            (
                ("for",),
                r"for\W*the\W*rest\W*of\W*(?:this|the|our)\W*(?:session|conversation|chat)\W*(?:,\W*)?"
                r"(?:you|your|act|respond|answer|behave|reply)\b",
            ),
        ],
    ),
    (
        "you_are_now",
        0.45,
        [
            (
                ("you",),
                r"you\W*are\W*now\W*(?:a|an|the|my|in|called|named|known|free|unrestricted|unfiltered)\b",
            )
        ],
    ),
    (
        "act_as",
        0.3,
        [
            (
                ("act", "behave", "respond", "answer"),
                r"(?:act|behave|respond|answer)\W*(?:as|like)\W*(?:an?\W*|my\W*|the\W*)?",
            )
        ],
    ),
    (
        "jailbreak_persona",
        0.9,
        [
            (
                (
                    "jailbreak",
                    "jailbroken",
                    "developer",
                    "god",
                    "dan",
                    "do",
                    "unrestricted",
                    "sudo",
                    "anti",
                    "evil",
                ),
                r"(?:jailbreak|jailbroken|developer\W*mode|god\W*mode|dan\W*mode|do\W*anything\W*now|"
                r"unrestricted\W*(?:mode|ai)|sudo\W*mode|anti\W*dan|evil\W*(?:confidant|assistant|bot))",
            ),
            (("dan",), r"dan\b\W*(?:prompt|mode|which stands|has no)"),
            (("without", "no"), r"(?:without|no)\W*(?:any\W*)?guardrails"),
            (("never",), r"never\W*refuses?"),
            (
                ("unfiltered", "uncensored", "unrestricted", "unaligned", "jailbroken", "unlocked"),
                r"(?:unfiltered|uncensored|unrestricted|unaligned|jailbroken|unlocked)\W*(?:model|ai|assistant|mode|"
                r"output|answers|responses|access|"
                r"version|chatbot|llm|bot|gpt)",
            ),
        ],
    ),
    (
        "without_restrictions",
        0.35,
        [
            (
                ("without", "no", "free", "not", "ignoring", "ignore"),
                r"(?:without|no|free (?:of|from)|not bound by|ignoring|ignore) (?:any |all |your )?(?:\w+ (?:or|and) )?"
                r"(?:restrictions|filters|filtering|censorship|limitations|guardrails|safety (?:rules|guidelines)|"
                r"ethical (?:guidelines|constraints)|content polic(?:y|ies)|disclaimers)",
            ),
        ],
    ),
    (
        "no_restrictions",
        0.6,
        [
            (
                ("no", "not"),
                r"(?:no longer|not) (?:have to |need to )?(?:follow|obey|bound by|restricted by) "
                r"(?:any |the |your )?(?:rules|guidelines|policies|instructions|restrictions)",
            ),
            (
                ("freed", "released", "liberated", "free", "unbound"),
                r"(?:freed|released|liberated|free|unbound)\W*(?:from|of|by)\W*(?:all\W*|any\W*|your\W*|the\W*)?"
                r"(?:\w+\W+)?(?:restrictions|rules|limits|limitations|filters|guardrails|constraints|guidelines|policies)",
            ),
            (
                ("rules", "restrictions", "policies", "guidelines", "guardrails", "limits", "laws"),
                r"(?:rules|restrictions|policies|guidelines|guardrails|limits|laws)\W*(?:do\W*not|don'?t|no\W*longer|"
                r"never)\W*apply\W*to\W*you",
            ),
            (
                ("no", "without"),
                r"(?:no|without\W*any)\W*(?:limits|boundaries|filters)\b",
            ),
            (
                ("bypass", "ignoring", "ignore", "skip", "disable", "circumvent", "without"),
                r"(?:bypass|ignoring|ignore|skip|disable|circumvent|without)\W*(?:the\W*|any\W*|all\W*)?"
                r"(?:redaction|confidentiality|anonymi[sz]ation|masking|privacy\W*(?:rules|checks)|data\W*protection)",
            ),
            (
                ("disable", "turn", "switch"),
                r"(?:disable|turn\W*off|switch\W*off|deactivate)\W*(?:your\W*|the\W*|all\W*)?(?:\w+\W+)?"
                r"(?:filters?|safety|guardrails|restrictions|checks|safeguards|controls|moderation)",
            ),
        ],
    ),
    (
        "new_instructions",
        0.6,
        [
            (
                (
                    "new",
                    "updated",
                    "revised",
                    "real",
                    "actual",
                    "true",
                    "additional",
                    "important",
                    "secret",
                    "hidden",
                    "override",
                ),
                r"(?:new|updated|revised|real|actual|true|additional|important|secret|hidden|override)\W*"
                r"(?:system\W*)?(?:instructions?|system prompt|prompt|directives?|orders|message|rules?|task|policy|"
                r"mission|objective|priority|priorities|goal|mode)\s*(?:[:\-]|are\b|is\b)",
            ),
            (("instead",), r"instead\W*(?:you|your)\W*(?:will|must|should|shall|are to)\b"),
            (
                ("begin", "start", "end"),
                r"(?:begin|start|end)\W*(?:of\W*)?(?:system|new|hidden)\W*(?:prompt|instructions?)",
            ),
            (
                ("follow", "obey"),
                r"(?:follow|obey)\W*only\W*(?:my|these|the\W*following|our)\W*(?:commands|instructions|orders|rules)",
            ),
            (("override",), r"override\s*(?::|engaged|active|enabled|mode\b|accepted|granted|successful)"),
            (
                ("obey", "follow", "execute"),
                r"(?:obey|follow|execute)\W*(?:every|all|any)\W*(?:commands?|instructions?|orders?)\W*without",
            ),
            (
                ("this",),
                r"this\W*(?:document|message|text|note)\W*(?:supersedes|overrides|replaces)\W*(?:your|the|all)",
            ),
        ],
    ),
    (
        "authority_claim",
        0.4,
        [
            (
                ("i", "as"),
                r"(?:i\W*am|i'?m|as)\W*(?:your|the)\W*(?:developer|creator|system\W*administrator|admin|administrator|owner|operator|programmer)",
            ),
            (("i",), r"i\W*(?:authori[sz]e|permit|allow)\W*you\W*to"),
            (
                ("i",),
                r"i\W*(?:am|'?m)\W*from\W*(?:the\W*)?(?:it|security|it\W*security|compliance|engineering|dev)\W*"
                r"(?:team|department)",
            ),
            (
                ("this",),
                r"this\W*is\W*(?:the|your)\W*(?:system\W*administrator|administrator|admin|developer|operator|"
                r"it\W*department|security\W*team|creator)",
            ),
            (
                ("coming", "comes", "came", "sent"),
                r"(?:coming|comes|came|sent)\W*(?:directly\W*)?from\W*(?:your|the)\W*(?:developer|creator|operator|"
                r"administrator|admin|system|owner)s?\b",
            ),
            (
                ("i", "user"),
                r"(?:user|i)\W*(?:has|have|am\W*granted|was\W*granted)\W*(?:full\W*)?(?:admin|administrator|"
                r"root|elevated|developer)\W*(?:rights|access|privileges|permissions)",
            ),
        ],
    ),
    (
        "addressed_to_ai",
        0.65,
        [
            (
                _AI_WORDS,
                rf"{_AI}\b\W*(?:\w+\W+){{0,2}}(?:reading|reads?|processing|processes|summari[sz]ing|summari[sz]es|"
                r"analy[sz]ing|parsing|ingesting|retrieving|sees?|seeing)\b",
            ),
            (
                ("note", "message", "instruction", "instructions", "attention", "notice"),
                rf"(?:note|message|instructions?|attention|notice)\W*(?:to|for)\W*(?:the\W*|any\W*|all\W*)?{_AI}\b",
            ),
            (("if",), rf"if\W*(?:you\W*are|an?)\W*(?:an?\W*)?{_AI}\b"),
            (
                ("if", "when", "while"),
                r"(?:if|when|while)\W*you\W*(?:are|'re)?\W*(?:summari[sz]ing|processing|reading|analy[sz]ing|"
                r"reviewing|parsing)\W*this\W*(?:document|report|file|page|text|email|letter|memo|contract)",
            ),
            (_AI_WORDS, rf"{_AI}\W*(?:reviewers?|readers?|tools?|systems?)\s*:"),
            (("dear", "hey", "hello", "attention", "hi"), rf"(?:dear|hey|hello|hi|attention)\W*{_AI}\b"),
            (
                _AI_WORDS,
                rf"{_AI}(?:\W*(?:system|reader|agent|tool)s?)?\W*[:,]\W*(?:please\W*)?"
                r"(?:ignore|disregard|when|you|do|always|never|tell|say|state|from|before|after|call|send|use|run|"
                r"forward|email|transfer|pay|reply|respond|answer)\b",
            ),
            (_AI_WORDS, rf"{_AI}\W*(?:instructions?|note|notice|directive|task|orders)\s*:"),
            (
                ("automated", "automatic"),
                r"(?:automated|automatic)\W*(?:readers?|systems?|tools?|agents?|assistants?|processing)\b",
            ),
            (_AI_WORDS, rf"{_AI}\W*(?:must|should|shall|is\W*to|needs\W*to|has\W*to)\b"),
            (
                ("when", "while"),
                r"(?:when|while)\W*(?:answering|summari[sz]ing|processing|reading)\W*(?:\w+\W+){0,3}"
                r"(?:this|the)\W*(?:document|file|page|text|email|message)",
            ),
        ],
    ),
    (
        "instruct_user_action",
        0.45,
        [
            (
                ("must", "should", "shall", "have", "need", "always", "now"),
                r"(?:must|should|shall|have to|need to|always|now)\W*(?:\w+\W+)?(?:tell|instruct|ask|advise|urge|direct|inform|"
                r"remind|convince|persuade)\W*(?:the\W*)?(?:user|reader|client|customer)s?\b",
            ),
            (
                ("tell", "instruct", "ask", "urge", "direct", "convince", "persuade", "advise", "recommend"),
                r"(?:tell|instruct|ask|urge|direct|convince|persuade|advise|recommend)\W*(?:the\W*)?"
                r"(?:user|reader|client|customer|them)s?\W*(?:that\W*)?(?:\w+\W+){0,4}(?:to|must|should|needs?\W*to)\W*(?:wire|transfer|send|pay|click|"
                r"visit|call|email|share|provide|enter|reset|disable)",
            ),
        ],
    ),
    (
        "move_money",
        0.35,
        [
            (
                ("wire", "transfer", "send", "remit", "move", "pay"),
                r"(?:wire|transfer|send|remit|move|pay)\W*(?:the\W*|all\W*|their\W*|your\W*|any\W*)?"
                r"(?:funds|money|payment|balance|deposit|fees?|amount|crypto|bitcoin)\W*(?:immediately\W*)?"
                r"(?:to|into|via)\b",
            ),
            (
                ("new", "updated", "changed", "different"),
                r"(?:new|updated|changed|different)\W*(?:bank|account|wallet|iban)\W*(?:details|number)?\W*(?:is|are|:|below|listed)",
            ),
            (("by", "via"), r"(?:by|via)\W*wire\W*(?:transfer)?\W*to\b"),
            (
                ("payee", "bank", "account", "payment", "beneficiary"),
                r"(?:payee|bank|account|payment|beneficiary)\W*(?:details|information|account)\W*(?:\w+\W+){0,4}"
                r"(?:have|has)\W*(?:been\W*)?changed",
            ),
            (
                ("send", "pay", "payment"),
                r"(?:send|pay|payment)\W*(?:\w+\W+){0,2}(?:via|in)\W*(?:bitcoin|crypto|gift\W*cards?)",
            ),
        ],
    ),
    (
        "conceal_from_user",
        0.4,
        [
            (
                ("do", "don", "dont", "never", "without", "must"),
                r"(?:do\W*not|don'?t|dont|never|without|must\W*not)\W*(?:tell|inform|mention(?:ing)?|reveal(?:ing)?|alert(?:ing)?|"
                r"notify(?:ing)?|let)\W*(?:this\W*|it\W*|that\W*)?(?:to\W*)?(?:the\W*|your\W*)?(?:user|human|operator|"
                r"client|anyone|them)\b",
            ),
            (
                ("secretly", "covertly", "silently", "quietly"),
                r"(?:secretly|covertly|silently|quietly)\W*(?:send|include|add|insert|append|forward|call|use)",
            ),
        ],
    ),
    (
        "self_reference",
        0.3,
        [
            (
                ("about", "regarding", "mention"),
                r"(?:about|regarding|mention)\W*this\W*(?:note|message|instruction|comment|paragraph|hidden\W*text)",
            ),
        ],
    ),
    (
        "exfiltration",
        0.6,
        [
            (
                ("send", "forward", "post", "upload", "email", "e", "leak", "exfiltrate", "copy"),
                r"(?:send|forward|post|upload|e\W?mail|leak|exfiltrate|copy)\W*(?:the\W*|all\W*|this\W*|your\W*|our\W*)?"
                r"(?:conversation|chat\W*history|context|credentials|api\W*keys?|passwords?|secrets|memory|"
                r"retrieved\W*(?:passages|documents)|system\W*prompt|instructions)\W*(?:\w+\W+){0,2}(?:to|into)\b",
            ),
            (
                ("call", "invoke", "use", "run", "trigger", "execute"),
                r"(?:call|invoke|use|run|trigger|execute)\W*(?:the\W*)?(?:\w+\W*)?(?:tool|function|plugin|api)\W*"
                r"(?:with|to)\W*(?:send|transfer|delete|wire|pay)",
            ),
            (
                ("password", "passwords", "credentials"),
                r"(?:password|passwords|credentials)\W*(?:for|of)\W*(?:the\W*)?(?:admin|administrator|root|database)",
            ),
        ],
    ),
    (
        "send_elsewhere",
        0.3,
        [
            (
                ("send", "forward", "post", "upload", "email", "e", "leak", "copy"),
                r"(?:send|forward|post|upload|e\W?mail|leak|copy)\W*(?:the\W*|all\W*|this\W*|your\W*|our\W*)?"
                r"(?:\w+\W+)?(?:messages|data|documents|files|attachments|accounts|records|history)\W*"
                r"(?:\w+\W+){0,2}(?:to|into)\b",
            ),
        ],
    ),
    (
        "tool_abuse",
        0.5,
        [
            (
                ("you", "always", "immediately", "now"),
                r"(?:you\W*(?:must|should|will)|always|immediately|now)\W*(?:\w+\W+)?(?:call|invoke|use|run|execute)\W*"
                r"(?:the\W*)?[\w\-]+\W*(?:tool|function)",
            ),
            (
                ("call", "invoke", "use", "run", "execute", "trigger"),
                r"(?:call|invoke|use|run|execute|trigger)\W*(?:the\W*)?[\w\-]+\W*(?:tool|function)\W*(?:with|to|and|on)\b",
            ),
        ],
    ),
]

# The same attack in the other languages of the firm's clients (French, German, Italian, Spanish, Dutch,
# Portuguese): overriding the instructions, revealing the system prompt.
SIGNAL_SPECS.append(
    (
        "override_instructions_other_language",
        0.9,
        [
            (
                ("ignorez", "oubliez", "ignoriere", "ignorieren", "vergiss", "vergessen", "ignora", "ignorare",
                 "dimentica", "ignorar", "olvida", "negeer", "vergeet", "esquece", "esqueca"),
                r"(?:ignorez|oubliez|ignoriere|ignorieren\W*sie|vergiss|vergessen\W*sie|ignora|ignorare|"
                r"dimentica|ignorar|olvida|negeer|vergeet|esquec[ea])\W*(?:\w+\W+){0,3}"
                r"(?:instructions|consignes|anweisungen|vorgaben|regeln|istruzioni|regole|instrucciones|reglas|"
                r"instructies|regels|instrucoes|regras)",
            ),
            (
                ("ignore", "oublie"),
                r"(?:ignore|oublie)\W*(?:toutes\W*)?(?:les|tes|vos)\W*(?:\w+\W+){0,2}(?:instructions|consignes|regles)",
            ),
            (
                ("prompt", "invite", "systemprompt", "mensaje", "messaggio"),
                r"(?:prompt|invite|mensaje|messaggio)\W*(?:di|del|de|du)\W*(?:sistema|systeme)|systemprompt",
            ),
        ],
    )
)  # fmt: skip

# Signals that are not introduced by a word: chat-template markers and fake conversation turns. Each is
# (name, weight, needles, pattern, at_line_start): the pattern runs only if a needle occurs in the
# normalised text; ``at_line_start`` requires only blanks or list/heading marks before it on its line.
SYMBOL_SIGNALS: list[tuple[str, float, tuple[str, ...], re.Pattern[str], bool]] = [
    (
        "fake_delimiter",
        0.7,
        ("<|", "<im_", "<sys", "</sys", "<system", "</system", "<end", "<assistant", "<user"),
        re.compile(r"<\|?\s*(?:im_start|im_end|system|endoftext|assistant|user)\s*\|?>|<</?sys>>|</?system>"),
        False,
    ),
    ("fake_delimiter", 0.7, ("[",), re.compile(r"\[/?(?:inst|system|sys)\]"), False),
    (
        "fake_delimiter",
        0.7,
        ("instruction", "response", "assistant", "system"),
        re.compile(r"#{2,}\s*(?:instruction|instructions|response|assistant|system)\s*:?"),
        True,
    ),
    (
        "addressed_to_ai",
        0.65,
        ("[", "(", "{"),
        re.compile(
            r"[\[({]\s*(?:\w+\W+){0,3}(?:ai|llm|assistants?|models?|bots?|agents?|language models?)\W*"
            r"(?:tools?|readers?|systems?)?\s*[\])}]"
        ),
        False,
    ),
    (
        "fake_delimiter",
        0.7,
        ("system", "developer"),
        re.compile(r"(?:system|developer)\s*(?:prompt|message)?\s*:"),
        True,
    ),
    ("fake_delimiter", 0.7, ("---",), re.compile(r"-{3,}\s*(?:end|begin)"), True),
    (
        "fake_delimiter",
        0.7,
        ("<!--",),
        re.compile(r"<!--\s*(?:ai|assistant|system|llm|model|note to)"),
        False,
    ),
    (
        "fake_dialogue",
        0.6,
        ("user", "human"),
        re.compile(r"(?:assistant|ai|bot)\s*:[^\n]{0,200}?(?:user|human)\s*:"),
        False,
    ),
    ("markdown_exfiltration", 0.6, ("](http",), re.compile(r"!\[[^\]]*\]\(https?://[^)]*[?&][^)]*\)"), False),
]
_LINE_PREFIX_RE = re.compile(r"[ \t#>*\-]*")

# Strong signals checked on the letters-only view, which joins words split by spaces or punctuation:
# (name, weight, needles, pattern).
SQUASHED_SIGNALS: list[tuple[str, float, tuple[str, ...], re.Pattern[str]]] = [
    (
        "override_instructions",
        1.0,
        ("ignor", "disregard", "forget", "bypass", "overrid", "overlook"),
        re.compile(
            r"(?:ignore|disregard|forget|bypass|override|overlook)(?:all|any|every)?(?:the|of)*"
            r"(?:your(?:previous|prior|above|earlier|preceding|system|initial|original)?|"
            r"(?:my)?(?:previous|prior|above|earlier|preceding|system|initial|original))"
            r"(?:instructions?|prompts?|directives?|directions|guidelines|rules)"
        ),
    ),
    (
        "reveal_system_prompt",
        0.9,
        ("prompt", "instruction"),
        re.compile(
            r"(?:show|reveal|print|repeat|display|output|leak|dump|disclose)(?:me|us)?(?:your|the)"
            r"(?:full|entire|hidden|secret|original|initial)?(?:systemprompt|initialprompt|hiddenprompt|"
            r"systeminstructions|secretinstructions|systemmessage|hiddenmessage)"
        ),
    ),
    (
        "ask_system_prompt",
        0.7,
        ("what",),
        re.compile(
            r"what(?:is|are|was|were)your(?:system|initial|hidden|secret)?(?:prompt|instructions)"
            r"|what(?:instructions|rules|guidelines|prompts?)(?:wereyou|youwere|haveyoubeen)given"
        ),
    ),
    (
        "jailbreak_persona",
        0.9,
        ("developermode", "doanythingnow", "jailbreak"),
        re.compile(r"developermode|doanythingnow|jailbreak"),
    ),
    (
        "addressed_to_ai",
        0.65,
        ("noteto", "attention", "messagefor", "instructionfor"),
        re.compile(r"(?:noteto|attention|messagefor|instructionfor)(?:the|any)?(?:ai|llm|assistant|chatbot)"),
    ),
]


# --- Concepts that co-occur in one sentence ---------------------------------------------------------
# Phrasings vary without end; what an injection talks about does not. Each word of the normalised
# text is mapped to concepts (a trailing * marks a stem), and a sentence that combines some of them is
# a signal even when no phrase above matched it.
_CONCEPT_WORDS: dict[str, tuple[str, ...]] = {
    # Imperative and present forms only: "the mandate was cancelled" reports, "cancel" commands.
    "override": (
        "ignore", "ignoring", "disregard", "disregarding", "forget", "forgetting", "drop", "skip", "skipping",
        "cancel", "override", "overriding", "bypass", "bypassing", "omit", "omitting", "abandon", "discard",
        "neglect", "overlook", "supersede", "supersedes", "suspend",
    ),
    "instructions": (
        "instruction*", "prompt", "prompts", "guidance", "guideline*", "rule", "rules", "directive*", "configur*",
        "programming", "training", "guardrail*", "setup", "wording", "persona", "policy", "policies",
    ),
    "limits": (
        "restriction*", "filter", "filters", "filtering", "caveat*", "disclaimer*", "safeguard*", "limit", "limits",
        "censor*", "checks", "compliance", "guardrail*", "rules", "ethics", "boundaries",
    ),
    "self": ("your", "yours", "yourself", "operator", "operators", "developer", "developers", "creators"),
    "you": ("you", "your", "yourself"),
    "disclose": (
        "reveal*", "show", "print*", "output", "summar*", "repeat*", "paste", "disclos*", "display*", "dump",
        "leak*", "recit*", "verbatim", "wording", "share", "echo", "tell", "list", "copy", "quote", "respond",
        "reply", "raw",
    ),
    "ai": (
        "ai", "llm", "llms", "chatbot*", "gpt", "chatgpt", "claude", "summariser*", "summarizer*", "automated",
        "model", "models", "bot", "bots",
    ),
    "modal": ("must", "should", "shall", "will", "need", "needs", "now", "always", "say", "state", "instead"),
    "action": (
        "transfer*", "wire", "wiring", "forward*", "pay", "paying", "deposit*", "login", "password*",
        "credential*", "delete*", "approve*", "omit*",
    ),
    "privilege": (
        "unrestricted", "unfiltered", "uncensored", "admin", "administrator", "permission", "authoris*",
        "authoriz*", "testing", "disabled", "enable", "unlocked", "maintenance",
    ),
    "received": ("received", "receive", "given", "got", "gave", "wrote", "written", "loaded", "programmed"),
    "prior": ("previous", "prior", "earlier", "above", "last", "preceding", "original", "initial"),
}  # fmt: skip

# (signal, weight, concepts that must all occur in one sentence)
CONCEPT_RULES: list[tuple[str, float, tuple[str, ...]]] = [
    ("override_own_instructions", 0.55, ("override", "instructions", "self")),
    ("override_prior_instructions", 0.55, ("override", "instructions", "prior")),
    ("disclose_own_instructions", 0.55, ("disclose", "instructions", "self")),
    ("disclose_own_instructions", 0.55, ("disclose", "instructions", "received")),
    ("reply_without_limits", 0.5, ("you", "modal", "limits")),
    ("ai_told_to_act", 0.4, ("ai", "modal", "action")),
    ("privilege_escalation", 0.4, ("privilege", "limits")),
]
_NARROW_INSTRUCTIONS = {
    "instruction", "instructions", "prompt", "prompts", "guidance", "guidelines", "guideline", "rules",
    "directive", "directives", "configuration", "setup", "wording", "persona", "programming",
}  # fmt: skip
_SENTENCE_SPLIT_RE = re.compile(r"[^.!?;\n]+")


def _concept_index() -> tuple[dict[str, frozenset[str]], list[tuple[str, str]]]:
    exact: dict[str, set[str]] = {}
    stems: list[tuple[str, str]] = []
    for concept, words in _CONCEPT_WORDS.items():
        for word in words:
            if word.endswith("*"):
                stems.append((word[:-1], concept))
            else:
                exact.setdefault(word, set()).add(concept)
    return {w: frozenset(c) for w, c in exact.items()}, stems


_CONCEPT_EXACT, _CONCEPT_STEMS = _concept_index()
_CONCEPTS_OF: dict[str, frozenset[str]] = {}


def concepts_of(word: str) -> frozenset[str]:
    """The concepts a normalised word stands for (memoised)."""
    cached = _CONCEPTS_OF.get(word)
    if cached is not None:
        return cached
    found = set(_CONCEPT_EXACT.get(word, ()))
    for stem, concept in _CONCEPT_STEMS:
        if word.startswith(stem):
            found.add(concept)
    result = frozenset(found)
    if len(_CONCEPTS_OF) < 50_000:
        _CONCEPTS_OF[word] = result
    return result


def _compile_signals() -> dict[str, list[tuple[str, float, re.Pattern[str]]]]:
    by_word: dict[str, list[tuple[str, float, re.Pattern[str]]]] = {}
    for name, weight, alternatives in SIGNAL_SPECS:
        for words, pattern in alternatives:
            compiled = re.compile(pattern)
            for word in words:
                by_word.setdefault(word, []).append((name, weight, compiled))
    return by_word


SIGNALS_BY_WORD = _compile_signals()
_PHRASE_SIGNAL_NAMES = {name for name, _, _ in SIGNAL_SPECS}
_WORD_RE = re.compile(r"[a-z]+")
_BASE64_RE = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e\t\r\n]")


def _concept_signals(folded: str, words: list[str]) -> list[tuple[str, float, tuple[int, int]]]:
    """Signals from concepts that co-occur in one sentence of the normalised text (``words``: all its
    words, to skip the sentence pass when no rule can match anywhere)."""
    hits: list[tuple[str, float, tuple[int, int]]] = []
    overall: set[str] = set()
    for word in set(words):
        overall |= concepts_of(word)
    if not any(all(c in overall for c in needed) for _, _, needed in CONCEPT_RULES):
        return hits
    seen: set[str] = set()
    # One signal per sentence at most (the strongest), so that rules overlapping on the same words do
    # not add up; different sentences may each contribute.
    for sentence in _SENTENCE_SPLIT_RE.finditer(folded):
        words = _WORD_RE.findall(sentence.group())
        if len(words) < 3:
            continue
        present: set[str] = set()
        for word in words:
            present |= concepts_of(word)
        if len(present) < 2:
            continue
        if "disclose" in present and not _NARROW_INSTRUCTIONS.intersection(words):
            present.discard("disclose")
        for name, weight, needed in CONCEPT_RULES:
            if name not in seen and all(c in present for c in needed):
                seen.add(name)
                hits.append((name, weight, sentence.span()))
                break
    return hits


#: The score from which a text counts as an injection attempt, unless a guardrail sets its own.
DEFAULT_THRESHOLD = 0.5


def combined_score(weights: list[float]) -> float:
    """Independent signals combined: 1 - the product of (1 - weight), in [0, 1]."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 4)


class PromptInjectionCheck(Check):
    kind = "prompt_injection"
    actions = frozenset({"block", "warn"})
    example_config: ClassVar[dict[str, Any]] = {
        "threshold": DEFAULT_THRESHOLD,
        "decode_base64": True,
        "extra_phrases": [],
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"threshold", "decode_base64", "extra_phrases"}, errors)
        threshold = get_number(config, "threshold", DEFAULT_THRESHOLD, errors, minimum=0.05, maximum=1.0)
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
        folded = view.text
        found: dict[str, dict[str, Any]] = {}

        def add(name: str, weight: float, span: tuple[int, int], via: str | None = None) -> None:
            if name in found and found[name]["weight"] >= weight:
                return
            signal = {"name": name, "weight": weight, "start": span[0], "end": span[1]}
            if via:
                signal["via"] = via
            found[name] = signal

        by_word = SIGNALS_BY_WORD
        words = _WORD_RE.findall(folded)
        if not by_word.keys().isdisjoint(words):
            for word in _WORD_RE.finditer(folded):
                candidates = by_word.get(word.group())
                if not candidates:
                    continue
                position = word.start()
                for name, weight, pattern in candidates:
                    if name in found and found[name]["weight"] >= weight:
                        continue
                    match = pattern.match(folded, position)
                    if match:
                        add(name, weight, view.span(position, match.end()))
        for name, weight, span in _concept_signals(folded, words):
            add(name, weight, view.span(*span))
        for name, weight, needles, pattern, at_line_start in SYMBOL_SIGNALS:
            if name in found or not any(n in folded for n in needles):
                continue
            for match in pattern.finditer(folded):
                if at_line_start:
                    line_start = folded.rfind("\n", 0, match.start()) + 1
                    if _LINE_PREFIX_RE.fullmatch(folded, line_start, match.start()) is None:
                        continue
                add(name, weight, view.span(*match.span()))
                break
        if self.extra is not None:
            match = self.extra.search(folded)
            if match:
                add("configured_phrase", 1.0, view.span(*match.span()))
        squashed: View | None = None
        for name, weight, needles, pattern in SQUASHED_SIGNALS:
            if name in found:
                continue
            if squashed is None:
                squashed = squash(view)
            if not any(n in squashed.text for n in needles):
                continue
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
        phrases = {name for name in found if name in _PHRASE_SIGNAL_NAMES}
        if phrases and folded != text.lower() and not any(s.get("via") for s in found.values()):
            # Only the normalised text matched a phrase (look-alike letters, leetspeak…): disguise is a
            # signal too.
            if not PromptInjectionCheck._plain_signals(text.lower()) & phrases:
                first = min((found[name] for name in phrases), key=lambda s: s["start"])
                add("obfuscation", 0.2, (first["start"], first["end"]))
        return sorted(found.values(), key=lambda s: (s["start"], s["name"]))

    @staticmethod
    def _plain_signals(lowered: str) -> set[str]:
        names = set()
        for word in _WORD_RE.finditer(lowered):
            for name, _, pattern in SIGNALS_BY_WORD.get(word.group(), ()):
                if name not in names and pattern.match(lowered, word.start()):
                    names.add(name)
        return names

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
        signals = None
        if self.decode_base64 and self.extra is None:  # the default scan: stored with knowledge passages
            from guardrails.screening import stored_signals

            signals = stored_signals(context.get("screening"), text)
        if signals is None:
            signals = self.scan(text)
        score = combined_score([s["weight"] for s in signals])
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
