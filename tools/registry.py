"""Running any tool, built-in or HTTP, behind one interface: validate the arguments, run, report.

``validate_arguments(tool, arguments)`` checks the arguments against the tool's JSON Schema and raises
``ToolArgumentsInvalid`` (with one message per problem). ``run_tool(tool, arguments)`` validates, runs
within the tool's timeout and returns a ``ToolResult``; a tool that fails returns ``ok=False`` and a
reason, it never raises. Used by the runtime's tool loop, the API ``test`` action and the admin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from tools.builtins import ToolError, get_builtin
from tools.http_executor import HttpToolError, call_http_tool
from tools.models import ToolKind

#: Longest text of a tool result kept in the trace and passed back to the model.
MAX_RESULT_CHARS = 20_000


class ToolArgumentsInvalid(ValueError):
    """The arguments do not match the tool's schema; ``messages`` lists each problem."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("; ".join(messages))


@dataclass
class ToolResult:
    """The outcome of one tool call: ``output`` (JSON value) when ``ok``, else ``error``."""

    ok: bool
    output: Any = None
    error: str = ""
    duration_ms: float = 0.0
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "output": self.output,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "details": self.details,
        }

    def content_for_model(self) -> str:
        """What the model reads back: the JSON output, or the error."""
        import json

        if not self.ok:
            return json.dumps({"error": self.error})
        text = json.dumps(self.output, ensure_ascii=False, default=str)
        return text[:MAX_RESULT_CHARS]


def _freeze(value):
    import json

    return json.dumps(value, sort_keys=True, default=str)


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    import json

    return Draft202012Validator(json.loads(schema_json))


def _error_path(error) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "arguments"


def validate_arguments(tool, arguments: Any) -> dict:
    """``arguments`` if they satisfy ``tool.input_schema``; else ``ToolArgumentsInvalid``."""
    if not isinstance(arguments, dict):
        raise ToolArgumentsInvalid(["arguments: must be a JSON object."])
    schema = tool.input_schema or {"type": "object"}
    # Decimals from a JSON parser configured with parse_float=Decimal count as numbers.
    validator = _validator(_freeze(schema))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise ToolArgumentsInvalid([f"{_error_path(e)}: {e.message}" for e in errors[:20]])
    return arguments


def _jsonable(value):
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run_tool(tool, arguments: Any, *, timeout: float | None = None) -> ToolResult:
    """Validate ``arguments`` (raises ``ToolArgumentsInvalid``) and run ``tool``.

    ``timeout`` (seconds) caps the tool's own timeout, e.g. to the time an execution has left.
    Built-in tools are pure computations whose inputs the schema bounds; HTTP tools are bounded by
    the timeout and their response size cap.
    """
    validate_arguments(tool, arguments)
    started = time.perf_counter()
    if not tool.is_enabled:
        return ToolResult(ok=False, error=f"The tool {tool.name!r} is disabled.")
    try:
        if tool.kind == ToolKind.BUILTIN:
            try:
                module = get_builtin(tool.builtin_key)
            except KeyError:
                return ToolResult(ok=False, error=f"Unknown built-in tool {tool.builtin_key!r}.")
            output = module.run(arguments)
            details: dict = {"builtin": tool.builtin_key}
        else:
            limit = float(tool.timeout_seconds)
            if timeout is not None:
                limit = max(0.001, min(limit, timeout))
            output, record = call_http_tool(tool, arguments, timeout=limit)
            details = {"http": record.to_dict()}
    except ToolError as exc:
        return ToolResult(ok=False, error=str(exc), duration_ms=(time.perf_counter() - started) * 1000)
    except HttpToolError as exc:
        details = {"http": exc.record.to_dict()} if exc.record else {}
        return ToolResult(
            ok=False, error=str(exc), duration_ms=(time.perf_counter() - started) * 1000, details=details
        )
    return ToolResult(
        ok=True,
        output=_jsonable(output),
        duration_ms=(time.perf_counter() - started) * 1000,
        details=details,
    )


__all__ = ["MAX_RESULT_CHARS", "ToolArgumentsInvalid", "ToolResult", "run_tool", "validate_arguments"]
