"""``max_length``: a ceiling on the length of the text, in characters or in estimated tokens.

Tokens are estimated without a model tokenizer (none may be downloaded): a quarter of the characters,
and never fewer than the words — close to the BPE tokenizers of the usual models on English and
European-language prose (about four characters a token).

Configuration: ``{"max_chars": 4000}`` or ``{"max_tokens": 1000}`` (one of the two, or both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from guardrails.checks.base import Check, ConfigError, Finding, get_int, reject_unknown


def estimate_tokens(text: str) -> int:
    """A cheap estimate of the number of tokens a model would see (never more than the characters)."""
    return min(len(text), max(len(text.split()), (len(text) + 3) // 4))


class MaxLengthCheck(Check):
    kind = "max_length"
    actions = frozenset({"block", "warn"})
    example_config: ClassVar[dict[str, Any]] = {"max_tokens": 2000}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"max_chars", "max_tokens"}, errors)
        max_chars = get_int(config, "max_chars", None, errors, minimum=1, maximum=10_000_000)
        max_tokens = get_int(config, "max_tokens", None, errors, minimum=1, maximum=2_000_000)
        if "max_chars" not in config and "max_tokens" not in config:
            errors.append("Set 'max_chars' or 'max_tokens' (or both).")
        if errors:
            raise ConfigError(errors)
        return {"max_chars": max_chars, "max_tokens": max_tokens}

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        max_chars, max_tokens = self.config["max_chars"], self.config["max_tokens"]
        chars = len(text)
        details: dict[str, Any] = {"chars": chars}
        problems = []
        if max_chars is not None and chars > max_chars:
            problems.append(f"{chars} characters (limit {max_chars})")
        if max_tokens is not None and chars > max_tokens:
            # A token is at least one character: shorter texts cannot exceed the limit.
            tokens = estimate_tokens(text)
            details["estimated_tokens"] = tokens
            if tokens > max_tokens:
                problems.append(f"about {tokens} tokens (limit {max_tokens})")
        if problems:
            start = max_chars if max_chars is not None and chars > max_chars else 0
            return Finding(
                True,
                f"The text is too long: {', '.join(problems)}.",
                spans=[(start, chars, "too_long")],
                details=details,
            )
        return Finding(False, "Within the length limit.", details=details)
