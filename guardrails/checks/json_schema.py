"""``json_schema`` (output): the answer is JSON that validates against a JSON Schema.

A Markdown code fence around the JSON (```json … ```) is accepted and removed before parsing when
``strip_code_fences`` is on. The schema is checked against its metaschema when the configuration is
saved.

Configuration::

    {"schema": {"type": "object", "required": ["vat_due"], "properties": {"vat_due": {"type": "string"}}},
     "strip_code_fences": true}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from guardrails.checks.base import Check, ConfigError, Finding, get_bool, reject_unknown

_FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.S)
MAX_ERRORS = 10


class JSONSchemaCheck(Check):
    kind = "json_schema"
    actions = frozenset({"block", "warn"})
    stages = frozenset({"output"})
    example_config: ClassVar[dict[str, Any]] = {
        "schema": {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        reject_unknown(config, {"schema", "strip_code_fences"}, errors)
        strip = get_bool(config, "strip_code_fences", True, errors)
        schema = config.get("schema")
        if not isinstance(schema, dict | bool) or schema == {}:
            errors.append("'schema' must be a non-empty JSON Schema object.")
        else:
            validator_class = validators.validator_for(schema)
            try:
                validator_class.check_schema(schema)
            except jsonschema_exceptions.SchemaError as exc:
                path = "/".join(str(p) for p in exc.path) or "(root)"
                errors.append(f"'schema' is not a valid JSON Schema at {path}: {exc.message}")
        if errors:
            raise ConfigError(errors)
        return {"schema": schema, "strip_code_fences": strip}

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        schema = config["schema"]
        self.validator = validators.validator_for(schema)(schema)

    def run(self, text: str, *, stage: str, context: Mapping[str, Any]) -> Finding:
        body = text
        if self.config["strip_code_fences"]:
            fenced = _FENCE_RE.match(text)
            if fenced:
                body = fenced.group("body")
        try:
            document = json.loads(body)
        except ValueError as exc:
            return Finding(
                True,
                f"The answer is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                details={"parsed": False},
            )
        problems = []
        for error in sorted(self.validator.iter_errors(document), key=lambda e: list(e.path))[:MAX_ERRORS]:
            path = "/" + "/".join(str(p) for p in error.absolute_path)
            # The message quotes the offending value: keep it short, it may hold part of the answer.
            message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
            problems.append({"path": path, "message": message})
        if problems:
            summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems[:3])
            return Finding(
                True,
                f"The answer does not match the schema ({len(problems)} error(s)): {summary}",
                details={"parsed": True, "errors": problems},
            )
        return Finding(False, "The answer matches the schema.", details={"parsed": True})
