"""``disclaimer`` (output): appends (or prepends) a configured notice to the answer.

Configuration::

    {"text": "This is general information, not tax advice.",
     "position": "end",          # or "start"
     "skip_if_present": true}    # not added twice when the answer already contains it
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from guardrails.checks.base import Check, ConfigError, Finding, get_bool, reject_unknown
from guardrails.checks.normalize import fold

MAX_TEXT = 2000


class DisclaimerCheck(Check):
    kind = "disclaimer"
    actions = frozenset({"append"})
    stages = frozenset({"output"})
    default_action = "append"
    example_config: ClassVar[dict[str, Any]] = {"text": "This is general information, not tax advice."}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"text", "position", "skip_if_present"}, errors)
        text = config.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.append("'text' (the notice to add) is required.")
            text = ""
        elif len(text) > MAX_TEXT:
            errors.append(f"'text' may be at most {MAX_TEXT} characters long.")
        position = config.get("position", "end")
        if position not in {"start", "end"}:
            errors.append('\'position\' must be "start" or "end".')
        skip = get_bool(config, "skip_if_present", True, errors)
        if errors:
            raise ConfigError(errors)
        return {"text": text.strip(), "position": position, "skip_if_present": skip}

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.folded = " ".join(fold(config["text"], leet=False, join_spaced=False).text.split())

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        if self.config["skip_if_present"] and self.folded in " ".join(
            fold(text, leet=False, join_spaced=False).text.split()
        ):
            return Finding(False, "The disclaimer is already present.")
        return Finding(
            True,
            f"Disclaimer added at the {self.config['position']}.",
            append=self.config["text"],
            append_position=self.config["position"],
        )
