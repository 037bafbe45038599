"""The small interface every model provider implements, and the values passed through it.

Messages and tools use the OpenAI chat-completions shapes (``{"role": ..., "content": ...}``,
``{"type": "function", "function": {...}}``) whatever the provider, so the trace shows exactly what
was sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from personas.models import default_max_tokens


@dataclass
class ToolCall:
    """A call the model asked for; ``arguments`` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


#: Tokens a chat format adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """An upper estimate of ``text``'s tokens without a tokenizer: one per three characters (prose
    averages about four in English, a little fewer in German), so that a reservation rarely falls
    short of what the provider then counts."""
    return math.ceil(len(text) / 3) if text else 0


@dataclass
class ModelRequest:
    """One model call. ``question`` and ``passages`` (already redacted) are for the offline engine,
    which reads them instead of parsing the messages; remote providers send ``messages`` only.
    ``max_tokens`` left out (or None) is the default of ``PRISMA_GLOW_DEFAULT_MAX_TOKENS``."""

    messages: list[dict]
    model: str = ""
    tools: list[dict] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float = 30.0
    question: str = ""
    passages: list[Any] = field(default_factory=list)

    def __post_init__(self):
        # Every request is bounded: a persona without max_tokens gets the documented default, so a
        # small local model cannot generate until its context is full.
        if not self.max_tokens:
            self.max_tokens = default_max_tokens()

    def input_estimate(self) -> int:
        """The most input tokens this request is likely to count (``estimate_tokens`` of every
        message's text, the tool calls and the tool definitions, plus a few tokens of framing per
        message): what a budget reserves before the call (``agents.runtime.budgets``)."""
        total = 0
        for message in self.messages:
            total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(str(message.get("content") or ""))
            if message.get("tool_calls"):
                total += estimate_tokens(json.dumps(message["tool_calls"]))
        if self.tools:
            total += estimate_tokens(json.dumps(self.tools))
        return total

    def trace(self) -> dict:
        """The request as recorded in the trace (what the provider receives, after redaction)."""
        return {
            "model": self.model,
            "messages": self.messages,
            "tools": [t["function"]["name"] for t in self.tools],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout_s": self.timeout,
        }


@dataclass
class ModelResponse:
    """The model's answer: text, tool calls, and usage (None when the provider reported none)."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str = ""
    model: str = ""
    attempts: int = 1

    def to_message(self) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [call.to_message() for call in self.tool_calls]
        return message

    def trace(self) -> dict:
        return {
            "content": self.content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "attempts": self.attempts,
        }


def cost_of(response: ModelResponse, provider) -> Decimal | None:
    """Cost from the provider row's prices per 1,000 tokens; None when usage is unknown."""
    if response.tokens_in is None or response.tokens_out is None:
        return None
    if provider is None:
        return Decimal("0")
    cost = Decimal(response.tokens_in) * provider.price_input_per_1k / 1000 + (
        Decimal(response.tokens_out) * provider.price_output_per_1k / 1000
    )
    return cost.quantize(Decimal("0.000001"))


@dataclass
class ConnectionCheck:
    """What "Test connection" found: ``ok``, how it asked (``method``: ``models`` for the model list,
    ``completion`` for a one-token request, ``offline`` for the embedded engine), the models listed,
    the one-token answer, the time taken, and on failure an ``error`` a person can act on. Never
    holds the API key."""

    ok: bool
    method: str
    latency_ms: float = 0.0
    models: list[str] = field(default_factory=list)
    answer: str = ""
    error: str = ""

    def summary(self) -> dict:
        """What the audit event records: the outcome and its facts, never the key."""
        return {
            "outcome": "ok" if self.ok else "failed",
            "method": self.method,
            "latency_ms": round(self.latency_ms, 1),
            "models": len(self.models),
            "error": self.error,
        }


class Provider:
    """A model behind ``stream``: yields text deltas (``str``), then exactly one ``ModelResponse``.

    ``stream=False`` asks for the whole answer at once (no deltas). Failures raise ``ProviderError``
    with a reason fit for the execution record.
    """

    kind = ""
    label = ""

    def stream(self, request: ModelRequest, *, stream: bool = True) -> Iterator[str | ModelResponse]:
        raise NotImplementedError

    def complete(self, request: ModelRequest) -> ModelResponse:
        for item in self.stream(request, stream=False):
            if isinstance(item, ModelResponse):
                return item
        raise RuntimeError("The provider produced no response.")  # pragma: no cover

    def check_connection(self) -> ConnectionCheck:
        """Ask the provider something cheap through the same client, guard and timeout as a run
        ("Test connection" on the provider's page)."""
        raise NotImplementedError


def parse_arguments(raw: str) -> Any:
    """A tool call's arguments; numbers with a fraction become Decimal (money never goes through float)."""
    return json.loads(raw or "{}", parse_float=Decimal)
