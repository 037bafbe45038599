"""The checks engine: what a case's answer must satisfy, one function per kind.

A case's ``checks`` is a JSON list of objects, each with a ``kind`` and that kind's settings.
``validate_checks(raw)`` checks definitions when a case is written (``ValidationError`` listing every
problem as ``Check n: …``, a 400 in the API) and returns them normalised; ``evaluate(check, outcome)``
applies one to a finished run and returns ``(passed, reason)``, the reason a sentence a person can
act on. ``Outcome`` is what a check may read of the run: the answer, its citations, its steps (the
guardrails' verdicts, the tool calls), status, latency and cost.

Kinds (settings; ``?`` optional):

- ``contains`` / ``not_contains``: ``text``, ``ignore_case?`` (default true).
- ``regex``: ``pattern``, ``ignore_case?`` (default false): the answer matches. Patterns are compiled
  with the ``regex`` package and tried against inputs known to cause catastrophic backtracking when
  the case is saved (guardrails' ``regex`` kind does the same, and its validation is reused); the
  search itself has a time limit (``REGEX_TIMEOUT``), past which the check fails with that reason.
- ``cites_at_least``: ``count`` (≥ 1): the answer cites at least that many passages.
- ``cites_document``: ``document_id`` or ``document_title``: one citation is of that document.
- ``blocked`` / ``not_blocked``: ``guardrail?`` (its name): the run was (not) blocked, by that
  guardrail when named (read from the guardrail steps of the trace).
- ``tool_called``: ``tool`` (slug or name), ``arguments?`` (an object): the run called the tool, with
  arguments containing those given (a subset, compared recursively; numbers by value).
- ``json_schema``: ``schema``: the answer (a Markdown code fence around it accepted) is JSON valid
  against that JSON Schema (checked against its metaschema when saved).
- ``number_within``: ``value``, ``tolerance?`` (default 0): some number written in the answer is
  within ``tolerance`` of ``value`` ("1,000.50" and "1.000,50" are 1000.5; citation markers
  such as ``[2]`` are not numbers of the answer).
- ``latency_under``: ``ms``: the run took less than that many milliseconds.
- ``cost_under``: ``amount``: the run cost less than that (a run without a known cost fails).

- ``rubric``: ``rubric`` (the criteria, up to 2,000 characters), ``min_agreement?`` (a share from 0
  to 1): a judge model grades the answer against the rubric (``evaluations.judge``: the question, the
  answer and the rubric sent to the suite's judge provider, a verdict and its reasoning returned and
  recorded). Without a judge able to grade (no provider, or the offline engine) the check is "not
  judged", with that reason, and does not count. With ``min_agreement`` the verdict counts only once
  the judge agrees with people's marks on at least that share of the suite's marked cases
  (``selectors.judge_agreement``); until then it is recorded and does not count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import regex
from django.core.exceptions import ValidationError
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from agents.runtime.citations import without_citations
from guardrails.checks.base import ConfigError
from guardrails.checks.regex_check import RegexCheck

#: The time a regular expression may search one answer (seconds).
REGEX_TIMEOUT = 0.1
MAX_CHECKS = 50
MAX_TEXT = 2000


@dataclass
class Outcome:
    """What the checks read of a finished run (built from an ``Execution`` and its steps)."""

    status: str
    output: str
    citations: list[dict] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # ExecutionStep-like: kind, name, status, input, output
    latency_ms: int | None = None
    cost: Decimal | None = None
    error: str = ""

    @classmethod
    def of(cls, execution, steps=None) -> Outcome:
        return cls(
            status=execution.status,
            output=execution.output or "",
            citations=list(execution.citations or []),
            steps=list(execution.steps.all() if steps is None else steps),
            latency_ms=execution.latency_ms,
            cost=execution.cost,
            error=execution.error or "",
        )


Result = tuple[bool, str]


# --- Reading settings --------------------------------------------------------------------------------
def _text(check: Mapping, name: str, errors: list[str], *, required=True) -> str | None:
    value = check.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"'{name}' must be a non-empty text.")
        return None
    if len(value) > MAX_TEXT:
        errors.append(f"'{name}' may be at most {MAX_TEXT} characters.")
        return None
    return value


def _bool(check: Mapping, name: str, default: bool, errors: list[str]) -> bool:
    value = check.get(name, default)
    if not isinstance(value, bool):
        errors.append(f"'{name}' must be true or false.")
        return default
    return value


def _number(check: Mapping, name: str, errors: list[str], *, minimum=None, required=True) -> Decimal | None:
    value = check.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors.append(f"'{name}' must be a number.")
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors.append(f"'{name}' must be a number.")
        return None
    if not number.is_finite() or (minimum is not None and number < minimum):
        errors.append(
            f"'{name}' must be a number of at least {minimum}."
            if minimum is not None
            else f"'{name}' must be a finite number."
        )
        return None
    return number


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


# --- Each kind: validate(settings, errors) → normalised settings; run(settings, outcome) → result ------
def _validate_contains(check, errors):
    return {"text": _text(check, "text", errors), "ignore_case": _bool(check, "ignore_case", True, errors)}


def _has(check, output: str) -> bool:
    if check["ignore_case"]:
        return check["text"].casefold() in output.casefold()
    return check["text"] in output


def contains(check, outcome: Outcome) -> Result:
    if _has(check, outcome.output):
        return True, f"The answer contains “{check['text']}”."
    return False, f"The answer does not contain “{check['text']}”."


def not_contains(check, outcome: Outcome) -> Result:
    if _has(check, outcome.output):
        return False, f"The answer contains “{check['text']}”, which it must not."
    return True, f"The answer does not contain “{check['text']}”."


def _validate_regex(check, errors):
    pattern = _text(check, "pattern", errors)
    ignore_case = _bool(check, "ignore_case", False, errors)
    if pattern is not None:
        try:
            RegexCheck.validate_config({"patterns": [pattern], "ignore_case": ignore_case})
        except ConfigError as exc:
            errors.extend(m.replace("Pattern 1", "The pattern") for m in exc.messages)
    return {"pattern": pattern, "ignore_case": ignore_case}


def regex_match(check, outcome: Outcome) -> Result:
    flags = regex.VERSION0 | (regex.IGNORECASE if check["ignore_case"] else 0)
    try:
        found = regex.compile(check["pattern"], flags).search(outcome.output, timeout=REGEX_TIMEOUT)
    except TimeoutError:
        return (
            False,
            f"The pattern took longer than {REGEX_TIMEOUT * 1000:.0f} ms on the answer; simplify it.",
        )
    if found:
        return True, f"The answer matches /{check['pattern']}/ (“{found.group(0)[:80]}”)."
    return False, f"The answer does not match /{check['pattern']}/."


def _validate_cites_at_least(check, errors):
    count = check.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        errors.append("'count' must be a whole number of at least 1.")
    return {"count": count}


def cites_at_least(check, outcome: Outcome) -> Result:
    cited = len(outcome.citations)
    if cited >= check["count"]:
        return True, f"The answer cites {cited} passage(s); at least {check['count']} required."
    return False, f"The answer cites {cited} passage(s); at least {check['count']} required."


def _validate_cites_document(check, errors):
    document_id, title = check.get("document_id"), check.get("document_title")
    if (document_id is None) == (title is None):
        errors.append("Give either 'document_id' or 'document_title'.")
        return {}
    if document_id is not None:
        if isinstance(document_id, bool) or not isinstance(document_id, int) or document_id < 1:
            errors.append("'document_id' must be a document's id (a positive whole number).")
        return {"document_id": document_id}
    return {"document_title": _text(check, "document_title", errors)}


def cites_document(check, outcome: Outcome) -> Result:
    if "document_id" in check:
        wanted, label = (
            (lambda c: c.get("document_id") == check["document_id"]),
            f"document {check['document_id']}",
        )
    else:
        title = check["document_title"].casefold()
        wanted, label = (
            (lambda c: (c.get("document_title") or "").casefold() == title),
            f"“{check['document_title']}”",
        )
    if any(wanted(c) for c in outcome.citations):
        return True, f"The answer cites {label}."
    cited = sorted({c.get("document_title") or str(c.get("document_id")) for c in outcome.citations})
    return False, f"The answer does not cite {label} (it cites: {', '.join(cited) or 'nothing'})."


def _validate_guardrail(check, errors):
    return {"guardrail": _text(check, "guardrail", errors, required=False)}


def _blockers(outcome: Outcome) -> list[str]:
    """The names of the guardrails that blocked the run (steps ``Name (stage)``, status blocked)."""
    return [
        step.name.rsplit(" (", 1)[0]
        for step in outcome.steps
        if step.kind == "guardrail" and step.status == "blocked"
    ]


def _blocked_by(check, outcome: Outcome) -> tuple[bool, str]:
    blockers = _blockers(outcome)
    name = check.get("guardrail")
    if name:
        return any(b.casefold() == name.casefold() for b in blockers), f"by “{name}”"
    return outcome.status == "blocked" or bool(blockers), ""


def blocked(check, outcome: Outcome) -> Result:
    hit, by = _blocked_by(check, outcome)
    if hit:
        return True, f"The run was blocked {by}".rstrip() + "."
    who = f" (blocked by {', '.join(_blockers(outcome))})" if _blockers(outcome) else ""
    return False, f"The run was not blocked {by}".rstrip() + f"{who}; it ended {outcome.status}."


def not_blocked(check, outcome: Outcome) -> Result:
    hit, by = _blocked_by(check, outcome)
    if hit:
        names = ", ".join(_blockers(outcome)) or "a guardrail"
        return False, f"The run was blocked {by or 'by ' + names}."
    return True, f"The run was not blocked {by}".rstrip() + "."


def _validate_tool_called(check, errors):
    arguments = check.get("arguments", {})
    if not isinstance(arguments, dict):
        errors.append("'arguments' must be an object (the arguments the call must include).")
    return {
        "tool": _text(check, "tool", errors),
        "arguments": arguments if isinstance(arguments, dict) else {},
    }


def _subset(expected, actual) -> bool:
    """Whether ``actual`` holds ``expected``: objects by their keys (recursively), numbers by value."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list) and len(expected) == len(actual) and all(map(_subset, expected, actual))
        )
    numeric = (int, float, Decimal)
    if isinstance(expected, numeric) and not isinstance(expected, bool):
        try:
            return not isinstance(actual, bool) and Decimal(str(actual)) == Decimal(str(expected))
        except InvalidOperation:
            return False
    return expected == actual


def tool_called(check, outcome: Outcome) -> Result:
    wanted = check["tool"].casefold()
    calls = [
        step
        for step in outcome.steps
        if step.kind == "tool_call"
        and wanted in (step.name.casefold(), str((step.input or {}).get("tool", "")).casefold())
    ]
    if not calls:
        made = sorted({step.name for step in outcome.steps if step.kind == "tool_call"})
        return False, f"The run did not call “{check['tool']}” (it called: {', '.join(made) or 'no tool'})."
    if not check["arguments"]:
        return True, f"The run called “{check['tool']}”."
    for step in calls:
        if _subset(check["arguments"], (step.input or {}).get("arguments")):
            return True, f"The run called “{check['tool']}” with {json.dumps(check['arguments'])}."
    seen = json.dumps((calls[-1].input or {}).get("arguments"))[:300]
    return (
        False,
        f"The run called “{check['tool']}”, but not with {json.dumps(check['arguments'])} (last call: {seen}).",
    )


_FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.S)


def _validate_json_schema(check, errors):
    schema = check.get("schema")
    if not isinstance(schema, dict) or not schema:
        errors.append("'schema' must be a non-empty JSON Schema object.")
        return {"schema": schema}
    try:
        validators.validator_for(schema).check_schema(schema)
    except jsonschema_exceptions.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        errors.append(f"'schema' is not a valid JSON Schema at {path}: {exc.message}")
    return {"schema": schema}


def json_schema(check, outcome: Outcome) -> Result:
    fenced = _FENCE_RE.match(outcome.output)
    body = fenced.group("body") if fenced else outcome.output
    try:
        document = json.loads(body)
    except ValueError as exc:
        return False, f"The answer is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    schema = check["schema"]
    errors = sorted(
        validators.validator_for(schema)(schema).iter_errors(document), key=lambda e: list(e.path)
    )
    if not errors:
        return True, "The answer is JSON valid against the schema."
    first = errors[0]
    path = "/" + "/".join(str(p) for p in first.absolute_path)
    return False, f"The answer does not match the schema at {path}: {first.message[:200]}"


def _validate_number_within(check, errors):
    value = _number(check, "value", errors)
    tolerance = _number(check, "tolerance", errors, minimum=0, required=False)
    return {
        "value": None if value is None else _plain(value),
        "tolerance": 0 if tolerance is None else _plain(tolerance),
    }


#: A number as written: digits, with "," "." or a thin / no-break space between groups; a sign.
_NUMBER_RE = re.compile(r"[-−]?\d(?:[\d.,\u202f\u00a0]*\d)?")


def numbers_in(text: str) -> list[Decimal]:
    """Every number written in ``text``, read as the offline engine reads them: "1,000.50", "1.000,50"
    and "1000.5" are 1000.5; with both marks the last is the decimal one; one mark used several times
    separates thousands; used once, it separates thousands when exactly three digits follow ("1,000"
    and "1.000" are 1000), else it is the decimal mark ("19.5", "2,5")."""
    found = []
    for match in _NUMBER_RE.finditer(text):
        raw = match.group(0).replace("−", "-").replace("\u202f", "").replace("\u00a0", "")
        dots, commas = raw.count("."), raw.count(",")
        if dots and commas:
            mark = "." if raw.rfind(".") > raw.rfind(",") else ","
            other = "," if mark == "." else "."
            raw = raw.replace(other, "").replace(mark, ".")
        elif dots + commas > 1:
            raw = raw.replace(",", "").replace(".", "")
        elif dots + commas == 1:
            mark = "." if dots else ","
            whole, fraction = raw.split(mark)
            raw = whole + fraction if len(fraction) == 3 else f"{whole}.{fraction}"
        try:
            found.append(Decimal(raw))
        except InvalidOperation:
            continue
    return found


def number_within(check, outcome: Outcome) -> Result:
    value, tolerance = Decimal(str(check["value"])), Decimal(str(check["tolerance"]))
    numbers = numbers_in(without_citations(outcome.output))
    for number in numbers:
        if abs(number - value) <= tolerance:
            return True, f"The answer gives {number}, within {tolerance} of {value}."
    seen = ", ".join(str(n) for n in numbers[:10]) or "no number"
    return False, f"No number in the answer is within {tolerance} of {value} (it gives: {seen})."


def _validate_latency(check, errors):
    ms = check.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 1:
        errors.append("'ms' must be a whole number of milliseconds, at least 1.")
    return {"ms": ms}


def latency_under(check, outcome: Outcome) -> Result:
    if outcome.latency_ms is None:
        return False, "The run has no recorded latency."
    if outcome.latency_ms < check["ms"]:
        return True, f"The run took {outcome.latency_ms} ms, under {check['ms']} ms."
    return False, f"The run took {outcome.latency_ms} ms; the limit is {check['ms']} ms."


def _validate_cost(check, errors):
    amount = _number(check, "amount", errors, minimum=0)
    return {"amount": None if amount is None else str(amount)}


def cost_under(check, outcome: Outcome) -> Result:
    if outcome.cost is None:
        return False, "The run's cost is unknown (its provider reported no usage)."
    limit = Decimal(check["amount"])
    if outcome.cost < limit:
        return True, f"The run cost {outcome.cost.normalize()}, under {limit}."
    return False, f"The run cost {outcome.cost.normalize()}; the limit is {limit}."


def _validate_rubric(check, errors):
    rubric = _text(check, "rubric", errors)
    agreement = _number(check, "min_agreement", errors, minimum=0, required=False)
    if agreement is not None and agreement > 1:
        errors.append("'min_agreement' must be a share from 0 to 1 (0.8 = 80 %).")
        agreement = None
    return {"rubric": rubric, "min_agreement": None if agreement is None else _plain(agreement)}


def rubric(check, outcome: Outcome) -> Result:
    """Without a judge (``evaluations.judge`` grades rubrics during a run): never a verdict."""
    return False, "Not judged: a rubric is graded by a judge model during a run."


@dataclass(frozen=True)
class Kind:
    """A kind of check: its settings' validation and its evaluation."""

    validate: Callable[[Mapping, list[str]], dict]
    run: Callable[[dict, Outcome], Result]


CHECKS: dict[str, Kind] = {
    "contains": Kind(_validate_contains, contains),
    "not_contains": Kind(_validate_contains, not_contains),
    "regex": Kind(_validate_regex, regex_match),
    "cites_at_least": Kind(_validate_cites_at_least, cites_at_least),
    "cites_document": Kind(_validate_cites_document, cites_document),
    "blocked": Kind(_validate_guardrail, blocked),
    "not_blocked": Kind(_validate_guardrail, not_blocked),
    "tool_called": Kind(_validate_tool_called, tool_called),
    "json_schema": Kind(_validate_json_schema, json_schema),
    "number_within": Kind(_validate_number_within, number_within),
    "latency_under": Kind(_validate_latency, latency_under),
    "cost_under": Kind(_validate_cost, cost_under),
    "rubric": Kind(_validate_rubric, rubric),
}
#: Kinds named by the design but not available yet, with the reason a definition is refused.
RESERVED: dict[str, str] = {}
SETTINGS: dict[str, frozenset[str]] = {
    "contains": frozenset({"text", "ignore_case"}),
    "not_contains": frozenset({"text", "ignore_case"}),
    "regex": frozenset({"pattern", "ignore_case"}),
    "cites_at_least": frozenset({"count"}),
    "cites_document": frozenset({"document_id", "document_title"}),
    "blocked": frozenset({"guardrail"}),
    "not_blocked": frozenset({"guardrail"}),
    "tool_called": frozenset({"tool", "arguments"}),
    "json_schema": frozenset({"schema"}),
    "number_within": frozenset({"value", "tolerance"}),
    "latency_under": frozenset({"ms"}),
    "cost_under": frozenset({"amount"}),
    "rubric": frozenset({"rubric", "min_agreement"}),
}


def validate_checks(raw: Any) -> list[dict]:
    """``raw`` (a case's ``checks``) normalised, or ``ValidationError`` with every problem, each
    message starting with the check's position (``Check 2: …``)."""
    if not isinstance(raw, list):
        raise ValidationError(
            'The checks must be a list of objects such as {"kind": "contains", "text": "…"}.'
        )
    if len(raw) > MAX_CHECKS:
        raise ValidationError(f"A case may have at most {MAX_CHECKS} checks.")
    problems: list[str] = []
    checks: list[dict] = []
    for position, check in enumerate(raw, start=1):
        if not isinstance(check, dict):
            problems.append(f"Check {position}: must be an object with a 'kind'.")
            continue
        kind = check.get("kind")
        if kind in RESERVED:
            problems.append(f"Check {position}: {RESERVED[kind]}")
            continue
        if kind not in CHECKS:
            known = ", ".join(sorted(CHECKS))
            problems.append(f"Check {position}: unknown kind {json.dumps(kind)[:60]}; the kinds are {known}.")
            continue
        errors: list[str] = []
        unknown = sorted(set(check) - SETTINGS[kind] - {"kind"})
        if unknown:
            errors.append(
                f"unknown setting(s) {', '.join(unknown)} (a {kind} check takes {', '.join(sorted(SETTINGS[kind]))})."
            )
        settings = CHECKS[kind].validate(check, errors)
        problems.extend(f"Check {position} ({kind}): {e}" for e in errors)
        if not errors:
            checks.append({"kind": kind, **{k: v for k, v in settings.items() if v is not None}})
    if problems:
        raise ValidationError(problems)
    return checks


def evaluate(check: dict, outcome: Outcome) -> Result:
    """Apply one validated check to a finished run: ``(passed, reason)``. A check that raises (a
    definition that was valid once and no longer is) fails with the error as its reason."""
    kind = CHECKS.get(check.get("kind"))
    if kind is None:
        return False, RESERVED.get(check.get("kind"), f"Unknown kind of check {check.get('kind')!r}.")
    try:
        return kind.run(check, outcome)
    except Exception as exc:  # a check must never end the run: its failure is the verdict
        return False, f"The check could not be applied: {exc}"
