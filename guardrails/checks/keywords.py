"""``keywords``: a deny list of words or phrases.

Configuration::

    {"keywords": ["project falcon", "insider"],
     "case_sensitive": false,   # true: exact case, no normalisation
     "whole_words": true,       # false: also inside longer words
     "label": "KEYWORD"}        # placeholder label when the action is redact: [KEYWORD_1]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from guardrails.checks.base import (
    Check,
    ConfigError,
    Finding,
    Redaction,
    get_bool,
    get_string_list,
    reject_unknown,
)
from guardrails.checks.terms import TermMatcher

_LABEL_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,23}$")


def validate_label(config: Mapping[str, Any], default: str, errors: list[str]) -> str:
    label = config.get("label", default)
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        errors.append(
            "'label' must be 1–24 upper-case letters, digits or underscores, starting with a letter."
        )
        return default
    return label


class KeywordsCheck(Check):
    kind = "keywords"
    sentence_wise = True
    actions = frozenset({"block", "redact", "warn"})
    example_config: ClassVar[dict[str, Any]] = {"keywords": ["project falcon"], "case_sensitive": False}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"keywords", "case_sensitive", "whole_words", "label"}, errors)
        keywords = get_string_list(config, "keywords", errors, required=True)
        case_sensitive = get_bool(config, "case_sensitive", False, errors)
        whole_words = get_bool(config, "whole_words", True, errors)
        label = validate_label(config, "KEYWORD", errors)
        if errors:
            raise ConfigError(errors)
        return {
            "keywords": keywords,
            "case_sensitive": case_sensitive,
            "whole_words": whole_words,
            "label": label,
        }

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.label: str = config["label"]
        self.matcher = TermMatcher(
            config["keywords"], case_sensitive=config["case_sensitive"], whole_words=config["whole_words"]
        )

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        hits = list(self.matcher.finditer(text))
        if not hits:
            return Finding(False, "No listed keyword found.")
        matched = sorted({self.matcher.terms[i] for _, _, i in hits})
        return Finding(
            True,
            f"Listed keyword(s) found: {', '.join(matched)}.",
            spans=[(s, e, "keyword") for s, e, _ in hits],
            details={"keywords": matched, "count": len(hits)},
            redactions=[Redaction(s, e, self.label, text[s:e]) for s, e, _ in hits],
        )
