"""Reading cases from an uploaded file: CSV or JSON Lines (docs/api.md "Evaluation cases").

Each row (a CSV line under a header, or one JSON object per line) gives ``name`` and ``input``, and
optionally ``as_of`` (YYYY-MM-DD), ``must_pass`` (true/false; in CSV also yes/no, 1/0, empty = false),
``expected_output`` and ``checks`` (a JSON list; in CSV a cell holding that JSON). Unknown columns or
keys are refused. ``parse_cases(name, data)`` returns ``(line, fields)`` pairs for
``services.cases_import`` or raises ``ValidationError`` on ``file`` listing every bad line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from django.core.exceptions import ValidationError

COLUMNS = ("name", "input", "as_of", "must_pass", "expected_output", "checks")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 1000
TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0", ""}


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str):
    return json.loads(text, parse_constant=_no_constant)


def _refuse(problems: list[str]):
    raise ValidationError(
        {"file": problems[:50] + ([f"… and {len(problems) - 50} more."] if len(problems) > 50 else [])}
    )


def _fields(row: dict, *, from_csv: bool) -> tuple[dict, list[str]]:
    problems = []
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        problems.append(
            f"unknown column(s) {', '.join(map(str, unknown))}; the columns are {', '.join(COLUMNS)}."
        )
    fields: dict = {}
    for name in ("name", "input"):
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"'{name}' is missing or empty.")
        else:
            fields[name] = value.strip() if name == "name" else value
    expected = row.get("expected_output")
    if expected not in (None, ""):
        if not isinstance(expected, str):
            problems.append("'expected_output' must be text.")
        else:
            fields["expected_output"] = expected
    as_of = row.get("as_of")
    if as_of not in (None, ""):
        try:
            fields["as_of"] = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else None
            if fields["as_of"] is None:
                raise ValueError
        except ValueError:
            problems.append(f"'as_of' must be a date as YYYY-MM-DD, not {json.dumps(as_of)[:40]}.")
    must_pass = row.get("must_pass")
    if from_csv:
        text = (must_pass or "").strip().lower()
        if text not in TRUE | FALSE:
            problems.append(f"'must_pass' must be true or false, not {json.dumps(must_pass)[:40]}.")
        fields["must_pass"] = text in TRUE
    elif must_pass is not None:
        if not isinstance(must_pass, bool):
            problems.append("'must_pass' must be true or false.")
        fields["must_pass"] = must_pass is True
    checks = row.get("checks")
    if from_csv and isinstance(checks, str) and checks.strip():
        try:
            checks = _loads(checks)
        except ValueError as exc:
            problems.append(f"'checks' is not valid JSON ({getattr(exc, 'msg', exc)}).")
            checks = None
    elif from_csv:
        checks = None
    if checks is not None:
        fields["checks"] = checks
    return fields, problems


def parse_cases(filename: str, data: bytes) -> list[tuple[int, dict]]:
    """The cases of an uploaded file (``.csv``, ``.jsonl`` or ``.ndjson``), see the module."""
    lower = (filename or "").lower()
    if not lower.endswith((".csv", ".jsonl", ".ndjson")):
        _refuse(["Upload a .csv file (with a header line) or a .jsonl file (one JSON object per line)."])
    if len(data) > MAX_BYTES:
        _refuse([f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it."])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _refuse(["The file is not UTF-8 text."])
    if "\x00" in text:
        _refuse(["The file holds a NUL character; it is not a text file."])
    rows = _csv_rows(text) if lower.endswith(".csv") else _jsonl_rows(text)
    if len(rows) > MAX_ROWS:
        _refuse([f"The file holds {len(rows)} cases; at most {MAX_ROWS} may be imported at once."])
    problems = [f"Line {line}: {p}" for line, _, row_problems in rows for p in row_problems]
    if problems:
        _refuse(problems)
    if not rows:
        _refuse(["The file holds no case."])
    return [(line, fields) for line, fields, _ in rows]


def _csv_rows(text: str) -> list[tuple[int, dict, list[str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        _refuse([f"Line 1: not readable as CSV ({exc})."])
    if "name" not in header or "input" not in header:
        _refuse(["Line 1: the header must name at least the columns 'name' and 'input'."])
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                rows.append((line, {}, ["more cells than the header has columns."]))
                continue
            if not any((value or "").strip() for value in row.values()):
                continue
            fields, problems = _fields({k: v for k, v in row.items() if v is not None}, from_csv=True)
            rows.append((line, fields, problems))
    except csv.Error as exc:
        _refuse([f"Line {reader.line_num}: not readable as CSV ({exc})."])
    return rows


def _jsonl_rows(text: str) -> list[tuple[int, dict, list[str]]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = _loads(raw)
        except ValueError as exc:
            rows.append((line, {}, [f"not valid JSON ({getattr(exc, 'msg', exc)})."]))
            continue
        if not isinstance(row, dict):
            rows.append((line, {}, ["must be a JSON object with 'name' and 'input'."]))
            continue
        fields, problems = _fields(row, from_csv=False)
        rows.append((line, fields, problems))
    return rows
