"""Model providers behind one interface (``base.Provider``): ``offline`` and ``openai_compatible``."""

from __future__ import annotations

from agents.runtime.providers.base import (
    ConnectionCheck,
    ModelRequest,
    ModelResponse,
    Provider,
    ToolCall,
    cost_of,
)
from agents.runtime.providers.offline import OfflineProvider


def get_provider(row) -> Provider:
    """The provider for a ``ModelProvider`` row; None (no provider configured) is the offline engine."""
    if row is None or row.kind == "offline":
        return OfflineProvider()
    if row.kind == "openai_compatible":
        from agents.runtime.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider(row)
    raise ValueError(f"Unknown provider kind {row.kind!r}.")


__all__ = [
    "ConnectionCheck",
    "ModelRequest",
    "ModelResponse",
    "OfflineProvider",
    "Provider",
    "ToolCall",
    "cost_of",
    "get_provider",
]
