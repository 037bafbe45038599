"""How a release is shown and compared: one reading for the API and the staff UI.

``shown_snapshot`` is a release's snapshot (``agents.releases``) as a viewer may see it: the learning
examples, stored redacted, with their client identifiers restored for a viewer who may see every
identifier of the organisation (``agents.privacy.sees_every_identifier``: an editor or above, never an
API key) on a release opened alone, masked (``DE89 •••• 3000``) for everyone else. Secrets are never in
a snapshot to begin with.

``release_diff`` compares two shown snapshots field by field: the agent's run settings, each persona
field, provider and model, the tools, knowledge bases and guardrails added, removed or changed (with
which settings, dotted paths such as ``settings.timeout`` or ``tool.method``), and the examples.
``text_rows`` lays a text out side by side with the changed words marked (difflib over word tokens),
for the staff UI's diff page.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from agents.models import Release
from agents.releases import stored_redactions
from guardrails.engine import restore
from guardrails.masking import mask_text

__all__ = ["TEXT_FIELDS", "release_diff", "shown_snapshot", "text_rows"]

#: Persona fields whose values are prose: diffed word by word, side by side, in the staff UI.
TEXT_FIELDS = ("system_prompt", "audience")

#: The assignment lists of a snapshot, with the key of the row each entry assigns.
_ASSIGNMENTS = {"tools": "tool", "knowledge": "knowledge_base", "guardrails": "guardrail"}


def shown_snapshot(release: Release, *, visible: bool) -> dict:
    """``release.snapshot`` with its examples' identifiers restored (``visible``) or masked."""
    snapshot = release.snapshot
    mappings = stored_redactions(release)
    examples = []
    for index, entry in enumerate(snapshot.get("examples", [])):
        mapping = mappings[index] if index < len(mappings) and isinstance(mappings[index], dict) else {}
        shown = dict(entry)
        for key in ("input", "output"):
            full = restore(entry.get(key, ""), mapping)
            shown[key] = full if visible else mask_text(full, known=mapping.values())
        examples.append(shown)
    return {**snapshot, "examples": examples}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{"a.b": leaf}``; lists and scalars are leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key in sorted(value):
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value[key], dict) and value[key]:
            flat.update(_flat(value[key], path))
        else:
            flat[path] = value[key]
    return flat


def _field_changes(before: dict, after: dict, *, skip: tuple[str, ...] = ()) -> list[dict]:
    """``[{"field", "before", "after"}]`` for each dotted path whose value differs (None when absent)."""
    old, new = _flat(before or {}), _flat(after or {})
    return [
        {"field": name, "before": old.get(name), "after": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if name not in skip and old.get(name) != new.get(name)
    ]


def _entry_id(kind: str, entry: dict) -> int:
    return entry[_ASSIGNMENTS[kind]]["id"]


def _entry_summary(kind: str, entry: dict) -> dict:
    target = entry[_ASSIGNMENTS[kind]]
    summary = {"id": target["id"], "name": target.get("name", ""), "order": entry.get("order")}
    if kind == "tools":
        summary["settings"] = entry.get("settings", {})
    elif kind == "knowledge":
        summary.update(top_k=entry.get("top_k"), min_score=entry.get("min_score"))
    return summary


def _list_changes(kind: str, before: list[dict], after: list[dict]) -> dict:
    old = {_entry_id(kind, e): e for e in before}
    new = {_entry_id(kind, e): e for e in after}
    changed = []
    for pk in sorted(old.keys() & new.keys(), key=lambda k: (new[k].get("order") or 0, k)):
        changes = _field_changes(old[pk], new[pk])
        if changes:
            changed.append({**_entry_summary(kind, new[pk]), "changes": changes})
    return {
        "added": [_entry_summary(kind, new[pk]) for pk in new if pk not in old],
        "removed": [_entry_summary(kind, old[pk]) for pk in old if pk not in new],
        "changed": changed,
    }


def _example_changes(before: list[dict], after: list[dict]) -> dict:
    old = {e["id"]: e for e in before}
    new = {e["id"]: e for e in after}
    changed = []
    for pk in [pk for pk in new if pk in old]:
        changes = _field_changes(old[pk], new[pk], skip=("id",))
        if changes:
            changed.append({"id": pk, "changes": changes})
    return {
        "added": [new[pk] for pk in new if pk not in old],
        "removed": [old[pk] for pk in old if pk not in new],
        "changed": changed,
    }


def _value_change(before: Any, after: Any) -> dict | None:
    return None if before == after else {"before": before, "after": after}


def release_diff(before: dict, after: dict) -> dict:
    """What changed from the snapshot ``before`` to ``after`` (both as ``shown_snapshot`` gives them).

    ``{"identical", "agent": [changes], "persona": [changes], "provider": {"before", "after"} | None,
    "model": {"before", "after"} | None, "tools" / "knowledge" / "guardrails": {"added", "removed",
    "changed"}, "examples": {"added", "removed", "changed"}}``; a change is ``{"field", "before",
    "after"}`` and a changed assignment lists its own (``order``, ``settings.…``, ``tool.…``)."""
    provider = _value_change(_provider_label(before.get("provider")), _provider_label(after.get("provider")))
    result = {
        "agent": _field_changes(before.get("agent", {}), after.get("agent", {}), skip=("id",)),
        "persona": _field_changes(before.get("persona", {}), after.get("persona", {}), skip=("id",)),
        "provider": provider,
        "model": _value_change(before.get("model"), after.get("model")),
        **{kind: _list_changes(kind, before.get(kind, []), after.get(kind, [])) for kind in _ASSIGNMENTS},
        "examples": _example_changes(before.get("examples", []), after.get("examples", [])),
    }
    result["identical"] = not (
        result["agent"]
        or result["persona"]
        or provider
        or result["model"]
        or any(any(result[kind].values()) for kind in (*_ASSIGNMENTS, "examples"))
    )
    return result


def _provider_label(provider: dict | None) -> dict | None:
    """What of a provider a diff shows: which one, its kind and default model (never its secret)."""
    if provider is None:
        return None
    return {key: provider.get(key) for key in ("id", "name", "kind", "default_model")}


# --- Side by side, word by word -------------------------------------------------------------------

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _marked(tokens: list[str], changed: list[bool]) -> list[tuple[str, bool]]:
    """Tokens joined into runs of the same kind; a space between two changed tokens counts as
    changed, so that "senior VAT" is one mark rather than two."""
    flags = list(changed)
    for k in range(1, len(tokens) - 1):
        if not flags[k] and tokens[k].isspace() and flags[k - 1] and flags[k + 1]:
            flags[k] = True
    runs: list[tuple[str, bool]] = []
    for token, flag in zip(tokens, flags, strict=True):
        if runs and runs[-1][1] == flag:
            runs[-1] = (runs[-1][0] + token, flag)
        else:
            runs.append((token, flag))
    return runs


def text_rows(before: str, after: str) -> list[dict]:
    """Two versions of a text side by side, word by word: one row per paragraph pair (aligned on the
    unchanged words), each ``{"old": [(text, changed)], "new": [(text, changed)], "changed"}``.

    The whole text is one sequence of word tokens for difflib, so a sentence moved within a line or a
    line broken differently is still matched word for word; rows break where both sides break a line
    at the same unchanged place, which keeps a long prompt readable in two wrapped columns."""
    a, b = _TOKENS.findall(before or ""), _TOKENS.findall(after or "")
    old_flags, new_flags = [False] * len(a), [False] * len(b)
    # Pairs (i, j) of unchanged newline tokens: where both columns may start a new row.
    breaks: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            breaks += [(i1 + k + 1, j1 + k + 1) for k in range(i2 - i1) if "\n" in a[i1 + k]]
            continue
        old_flags[i1:i2] = [True] * (i2 - i1)
        new_flags[j1:j2] = [True] * (j2 - j1)
    rows = []
    start_a = start_b = 0
    for end_a, end_b in [*breaks, (len(a), len(b))]:
        # The shared line break that ends a row is the row's end, not text in its cells.
        stop_a, stop_b = (end_a - 1, end_b - 1) if (end_a, end_b) in breaks else (end_a, end_b)
        if stop_a > start_a or stop_b > start_b:
            rows.append(
                {
                    "old": _marked(a[start_a:stop_a], old_flags[start_a:stop_a]),
                    "new": _marked(b[start_b:stop_b], new_flags[start_b:stop_b]),
                    "changed": any(old_flags[start_a:stop_a]) or any(new_flags[start_b:stop_b]),
                }
            )
        start_a, start_b = end_a, end_b
    return rows
