"""The stream protocol in the OpenAPI schema: a drf-spectacular postprocessing hook adds a component
for each event of ``?stream=true`` (``agents.runtime.streaming``) and names them, as the extension
``x-events``, on every ``text/event-stream`` response. The response itself stays a string: a Server-
Sent Events body is not JSON, and JSON Schema cannot describe its framing."""

from __future__ import annotations

from agents.runtime.streaming import EVENTS

_TEXT = {"type": "string"}

#: The ``data`` of each event (``step`` and ``execution`` reuse the API's own components).
PAYLOADS = {
    "step": {"$ref": "#/components/schemas/ExecutionStep"},
    "delta": {
        "type": "object",
        "description": "The next sentence of the answer, checked by the output guardrails: append it as text.",
        "properties": {"text": _TEXT},
        "required": ["text"],
    },
    "retract": {
        "type": "object",
        "description": "Replace everything shown of the answer by `text`. With a `reason`, a guardrail "
        "blocked the answer (`text` is empty); with an empty `reason`, the guardrails rewrote the "
        "answer at the end and `text` is the answer as recorded.",
        "properties": {"reason": _TEXT, "text": _TEXT},
        "required": ["reason", "text"],
    },
    "approval": {
        "type": "object",
        "description": "The run paused: the model called a tool that requires a person's approval. The "
        "`execution` (status `awaiting_approval`) follows and the stream ends; decide the call with "
        "`/tool-approvals/{id}/approve/` or `…/refuse/` and the run resumes in the background.",
        "properties": {
            "id": {"type": "integer"},
            "execution": {"type": "integer"},
            "tool": {"type": "integer", "nullable": True},
            "tool_name": _TEXT,
            "call_id": _TEXT,
            "arguments": {"type": "object", "description": "As the model wrote them (placeholders)."},
            "edited_arguments": {"type": "object", "nullable": True},
            "status": _TEXT,
            "reason": _TEXT,
            "decided_by": {"type": "integer", "nullable": True},
            "decided_at": {"type": "string", "format": "date-time", "nullable": True},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "execution", "tool_name", "arguments", "status", "expires_at"],
    },
    "execution": {"$ref": "#/components/schemas/ExecutionDetail"},
    "error": {"$ref": "#/components/schemas/Error"},
}


def _component(event: str) -> str:
    return f"Stream{event.capitalize()}Event"


def postprocess_stream_events(result, generator, request, public):
    """drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    names = []
    for event in EVENTS:
        name = _component(event)
        schemas[name] = {
            "type": "object",
            "description": f"`event: {event}`; `data:` the JSON object of `data` below.",
            "properties": {"event": {"type": "string", "enum": [event]}, "data": PAYLOADS[event]},
            "required": ["event", "data"],
        }
        names.append({"$ref": f"#/components/schemas/{name}"})
    schemas["StreamEvent"] = {
        "description": "One Server-Sent Event of a streamed run (docs/api.md, “Streaming”).",
        "oneOf": names,
        "discriminator": {"propertyName": "event"},
    }
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                media = response.get("content", {}).get("text/event-stream")
                if media is not None:
                    media["x-events"] = {"$ref": "#/components/schemas/StreamEvent"}
    return result
