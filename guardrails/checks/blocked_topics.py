"""``blocked_topics``: subjects the agent must not discuss, each a name and the terms that signal it.

Configuration (a topic may also be a plain string, which is then its own only term)::

    {"topics": [{"name": "Investment advice", "terms": ["which shares", "crypto", "bitcoin"]},
                "gambling"],
     "case_sensitive": false}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from guardrails.checks.base import Check, ConfigError, Finding, get_bool, reject_unknown
from guardrails.checks.terms import TermMatcher

MAX_TOPICS = 100
MAX_TERMS = 200


class BlockedTopicsCheck(Check):
    kind = "blocked_topics"
    sentence_wise = True
    actions = frozenset({"block", "warn"})
    example_config: ClassVar[dict[str, Any]] = {
        "topics": [{"name": "Investment advice", "terms": ["which shares to buy", "crypto tips"]}]
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"topics", "case_sensitive"}, errors)
        case_sensitive = get_bool(config, "case_sensitive", False, errors)
        raw = config.get("topics")
        topics: list[dict[str, Any]] = []
        if not isinstance(raw, list) or not raw:
            errors.append(
                '\'topics\' must be a non-empty list of topics ({"name": …, "terms": […]} or a string).'
            )
            raw = []
        if len(raw) > MAX_TOPICS:
            errors.append(f"'topics' may list at most {MAX_TOPICS} topics.")
        for position, topic in enumerate(raw, start=1):
            if isinstance(topic, str):
                topic = {"name": topic, "terms": [topic]}
            if not isinstance(topic, dict):
                errors.append(f"Topic {position} must be a string or an object with 'name' and 'terms'.")
                continue
            name = topic.get("name")
            terms = topic.get("terms", [name] if isinstance(name, str) else None)
            extra = sorted(set(topic) - {"name", "terms"})
            if extra:
                errors.append(f"Topic {position}: unknown setting(s) {', '.join(extra)}.")
            if not isinstance(name, str) or not name.strip():
                errors.append(f"Topic {position} needs a 'name'.")
                continue
            if (
                not isinstance(terms, list)
                or not terms
                or not all(isinstance(t, str) and t.strip() for t in terms)
            ):
                errors.append(f"Topic '{name}': 'terms' must be a non-empty list of non-empty strings.")
                continue
            if len(terms) > MAX_TERMS or any(len(t) > 200 for t in terms):
                errors.append(f"Topic '{name}': at most {MAX_TERMS} terms of at most 200 characters.")
                continue
            topics.append({"name": name.strip(), "terms": [t.strip() for t in terms]})
        if errors:
            raise ConfigError(errors)
        return {"topics": topics, "case_sensitive": case_sensitive}

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.topic_of: list[str] = []
        terms: list[str] = []
        for topic in config["topics"]:
            for term in topic["terms"]:
                terms.append(term)
                self.topic_of.append(topic["name"])
        self.matcher = TermMatcher(terms, case_sensitive=config["case_sensitive"])

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        hits = list(self.matcher.finditer(text))
        if not hits:
            return Finding(False, "No blocked topic found.")
        topics = list(dict.fromkeys(self.topic_of[i] for _, _, i in hits))
        return Finding(
            True,
            f"Blocked topic(s): {', '.join(topics)}.",
            spans=[(s, e, self.topic_of[i]) for s, e, i in hits],
            details={"topics": topics},
        )
