"""The audit explorer: the staff UI's view of the log — filtered by agent, actor, action and dates, the
agent's runs hidden unless asked for, each event's before and after as a readable side-by-side diff,
and the filtered list as a streamed CSV.

Which events belong to an agent is stored when they are written (``AuditEventAgent``, filled by
``audit_record`` through ``services.agent_of``), so the agent filter is a join on an indexed column,
not a guess from names. Models, field labels and the names behind foreign keys are looked up by their
labels in the app registry: the audit app imports no app above it.

Texts are shown and exported as stored: the log holds client identifiers masked (``agents.privacy``:
an object's name, a run's error, a learning example's texts are masked when the event is written), and
nothing here restores them.
"""

from __future__ import annotations

import csv
import datetime
import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import F, Model, Q, QuerySet
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst

from prisma_glow.audit.models import AGENT_MODEL, AuditEvent
from prisma_glow.tenancy.models import APIKey

#: A run of an agent: one per execution, hidden from the explorer unless asked for.
RUN_ACTION = "agent.execute"
#: An agent's deletion: its event names the agent, which the filter then still offers.
AGENT_DELETE = "agent.delete"
PAGE_SIZE = 50

#: How the first part of an action reads; the others are written out from the action itself.
GROUP_LABELS = {
    "agent": "Agent",
    "persona": "Persona",
    "release": "Release",
    "api_key": "API key",
    "knowledge_base": "Knowledge base",
    "login": "Sign-in",
    "factor": "Second factor",
}
VERB_LABELS = {"execute": "run"}


def group_of(action: str) -> str:
    return action.rsplit(".", 1)[0] if "." in action else action


def group_label(group: str) -> str:
    return GROUP_LABELS.get(group) or capfirst(group.replace("_", " ").replace(".", " "))


def action_label(action: str) -> str:
    """``persona.update`` → "Persona: update"; ``agent.execute`` → "Agent: run"."""
    if "." not in action:
        return capfirst(action.replace("_", " "))
    group, verb = action.rsplit(".", 1)
    return f"{group_label(group)}: {VERB_LABELS.get(verb, verb.replace('_', ' '))}"


def agent_model():
    return apps.get_model(AGENT_MODEL)


# --- Filters ----------------------------------------------------------------------------------------


class ExplorerForm(forms.Form):
    """The explorer's filters, read from the query string. Choices come from the organisation's own
    agents, members, keys and actions: a value from elsewhere is refused as not one of the choices."""

    q = forms.CharField(required=False, max_length=200, strip=True, label="Search")
    agent = forms.ChoiceField(required=False, label="Agent")
    actor = forms.ChoiceField(required=False, label="Actor")
    action = forms.ChoiceField(required=False, label="Action")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    runs = forms.BooleanField(required=False, label="Include runs")

    def __init__(self, data, *, agents, actors, actions, deleted_agents=()):
        super().__init__(data)
        self.agents = agents
        live = [(str(a.pk), a.name) for a in agents]
        gone = [(pk, f"{name} (deleted)") for pk, name in deleted_agents if pk not in dict(live)]
        self.fields["agent"].choices = [("", "Any agent"), *live, *gone]
        self.fields["actor"].choices = [("", "Anyone"), *actors, ("system", "System (no actor)")]
        grouped: dict[str, list[tuple[str, str]]] = {}
        for action in actions:
            grouped.setdefault(group_of(action), []).append((action, action_label(action)))
        self.fields["action"].choices = [("", "Any action")] + [
            (group_label(group), [(f"{group}.*", f"All {group_label(group).lower()} actions"), *items])
            for group, items in sorted(grouped.items(), key=lambda kv: group_label(kv[0]))
        ]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data


@dataclass
class Explorer:
    """What one request of the explorer asks for, validated, and the events it selects."""

    form: ExplorerForm
    events: QuerySet

    @property
    def filtered(self) -> QuerySet:
        """The events the filters select (none when a filter is invalid), newest first, each with its
        agent's id (``agent_ref``)."""
        if not self.form.is_valid():
            return self.events.none()
        data = self.form.cleaned_data
        events = self.events.annotate(agent_ref=F("agent_link__agent_id"))
        if data["agent"]:
            events = events.filter(agent_link__agent_id=int(data["agent"]))
        if data["q"]:
            # The object's name (as stored: masked), who acted, the action, the object's id — or the
            # name of the agent the event belongs to ("VAT adviser" finds its persona versions).
            text = data["q"]
            named = self.form.agents.filter(name__icontains=text).values("pk")
            events = events.filter(
                Q(object_repr__icontains=text)
                | Q(actor_label__icontains=text)
                | Q(action__icontains=text)
                | Q(object_id=text)
                | Q(agent_link__agent_id__in=named)
            )
        actor = data["actor"]
        if actor == "system":
            events = events.filter(actor_user__isnull=True, actor_api_key__isnull=True)
        elif actor.startswith("user:"):
            events = events.filter(actor_user_id=int(actor[5:]))
        elif actor.startswith("key:"):
            events = events.filter(actor_api_key_id=int(actor[4:]))
        action = data["action"]
        if action.endswith(".*"):
            events = events.filter(action__startswith=action[:-1])
        elif action:
            events = events.filter(action=action)
        if not data["runs"] and action not in (RUN_ACTION, f"{group_of(RUN_ACTION)}.*"):
            events = events.exclude(action=RUN_ACTION)
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(at__gte=datetime.datetime.combine(data["since"], datetime.time(), zone))
        if data["until"]:
            end = data["until"] + datetime.timedelta(days=1)
            events = events.filter(at__lt=datetime.datetime.combine(end, datetime.time(), zone))
        return events.order_by("-at", "-id")


def explorer_for(request, events: QuerySet, *, organization, every_organization: bool = False) -> Explorer:
    """The explorer of ``events`` (already scoped to what the request may read) for ``request``'s query
    string. The filters' choices are ``organization``'s agents, members and keys and the actions its log
    holds (and the agents deleted since, named by their deletion's event) — every organisation's when
    ``every_organization`` (a superuser, who reads every log), none without an organisation. Five
    queries, whatever the log's length."""
    agents = agent_model()._default_manager.order_by("name", "pk")
    users = get_user_model()._default_manager.order_by("username")
    keys = APIKey.objects.order_by("name", "pk")
    if every_organization:
        actions = actions_in(None)
        deleted = events
    elif organization is None:
        agents, users, keys, actions = agents.none(), users.none(), keys.none(), []
        deleted = events.none()
    else:
        agents = agents.filter(organization=organization)
        users = users.filter(memberships__organization=organization)
        keys = keys.filter(organization=organization)
        actions = actions_in(organization)
        deleted = events.filter(organization=organization)
    actors = [(f"user:{u.pk}", u.get_username()) for u in users.only("pk", "username")]
    actors += [(f"key:{k.pk}", f"API key {k.name}") for k in keys.only("pk", "name")]
    # Agents deleted since: their events keep their agent; the deletion's event names them.
    deleted = deleted.filter(action=AGENT_DELETE, object_type=AGENT_MODEL).order_by("object_repr")
    form = ExplorerForm(
        request.GET,
        agents=agents.only("pk", "name"),
        actors=actors,
        actions=actions,
        deleted_agents=deleted.values_list("object_id", "object_repr"),
    )
    return Explorer(form=form, events=events)


def actions_in(organization) -> list[str]:
    """The distinct actions of ``organization``'s log (every log's for None: a superuser without a
    selected organisation), in order. A loose index scan written as a recursive query (the same SQL on
    PostgreSQL and SQLite): one probe of ``audit_org_action_idx`` per action, where ``DISTINCT`` read
    every event (70 ms for 200,000 events of two actions on PostgreSQL; this: 2–3 ms)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    where, params = ("organization_id = %s", [organization.pk]) if organization is not None else ("1 = 1", [])
    sql = f"""
        WITH RECURSIVE found(action) AS (
            SELECT MIN(action) FROM {table} WHERE {where}
            UNION ALL
            SELECT (SELECT MIN(e.action) FROM {table} e WHERE {where} AND e.action > found.action)
            FROM found WHERE found.action IS NOT NULL
        )
        SELECT action FROM found WHERE action IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params * 2)
        return [row[0] for row in cursor.fetchall()]


def agent_names(ids: Iterable[int | None]) -> dict[int, str]:
    """Each agent's name by id, one query; an agent deleted since reads "deleted agent #7"."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    found = dict(agent_model()._base_manager.filter(pk__in=wanted).values_list("pk", "name"))
    return {i: found.get(i, f"deleted agent #{i}") for i in wanted}


def page_of(events: QuerySet, page: int) -> tuple[list[AuditEvent], bool]:
    """One page of ``events`` and whether another follows (one query: no count of the whole log)."""
    start = (page - 1) * PAGE_SIZE
    rows = list(events[start : start + PAGE_SIZE + 1])
    names = agent_names(e.agent_ref for e in rows)
    for event in rows:
        event.agent_name = names.get(event.agent_ref, "")
        event.action_label = action_label(event.action)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


# --- CSV --------------------------------------------------------------------------------------------

CSV_HEADER = ["time", "actor", "action", "action_label", "agent", "object_type", "object_id", "object", "ip"]
CSV_HEADER += ["before", "after", "hash"]
#: A cell a spreadsheet would run as a formula begins with one of these (OWASP's CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """``value`` as a CSV cell that a spreadsheet shows as text: JSON for structures, and a leading
    apostrophe before a formula's first character."""
    if value is None:
        text = ""
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(events: QuerySet, *, chunk_size: int = 2000) -> Iterator[str]:
    """The CSV export of ``events``, line by line, read ``chunk_size`` events at a time (a server-side
    cursor on PostgreSQL): the whole log is never held in memory. Values as stored — masked
    identifiers stay masked."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    names: dict[int, str] = {}
    chunk: list[AuditEvent] = []

    def flush() -> Iterator[str]:
        missing = {e.agent_ref for e in chunk if e.agent_ref is not None and e.agent_ref not in names}
        names.update(agent_names(missing))
        for e in chunk:
            yield writer.writerow(
                csv_cell(v)
                for v in (
                    e.at.isoformat(),
                    e.actor_label or "system",
                    e.action,
                    action_label(e.action),
                    names.get(e.agent_ref, ""),
                    e.object_type,
                    e.object_id,
                    e.object_repr,
                    e.ip,
                    e.before,
                    e.after,
                    e.hash,
                )
            )
        chunk.clear()

    for event in events.iterator(chunk_size=chunk_size):
        chunk.append(event)
        if len(chunk) >= chunk_size:
            yield from flush()
    yield from flush()


# --- The before / after of one event ----------------------------------------------------------------


def _model_of(object_type: str) -> type[Model] | None:
    try:
        return apps.get_model(object_type) if "." in object_type else None
    except LookupError:
        return None


def _field_for(model, key: str):
    if model is None:
        return None
    for field in model._meta.concrete_fields:
        if key in (field.attname, field.name):
            return field
    return None


def _label(field, key: str) -> str:
    if field is not None:
        return capfirst(str(field.verbose_name))
    return capfirst(key.removesuffix("_id").replace("_", " "))


def _is_id(value) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, str) and value.isdigit())
    )


def _related_names(model, keys: list[str], sides: list[dict]) -> dict[tuple[str, str], str]:
    """The names behind the foreign keys of the event (one query per related model): ``(key, id)`` →
    name. A row deleted since is absent."""
    names: dict[tuple[str, str], str] = {}
    for key in keys:
        field = _field_for(model, key)
        if field is None or not field.many_to_one or field.related_model is None:
            continue
        ids = {str(side[key]) for side in sides if _is_id(side.get(key))}
        if not ids:
            continue
        related = field.related_model
        for obj in related._base_manager.filter(pk__in=ids):
            label = obj.get_username() if hasattr(obj, "get_username") else str(obj)
            names[(key, str(obj.pk))] = label
    return names


@dataclass
class Shown:
    """A value as the diff shows it: its text, whether it is structured (JSON, shown in a block), and
    whether it stands for nothing (shown muted)."""

    text: str
    block: bool = False
    muted: bool = False


def shown(value, *, field=None, key: str = "", names: dict | None = None) -> Shown:
    if value is None:
        return Shown("(none)", muted=True)
    if value == "":
        return Shown("(empty)", muted=True)
    if isinstance(value, bool):
        return Shown("Yes" if value else "No")
    if field is not None and field.many_to_one and _is_id(value):
        name = (names or {}).get((key, str(value)))
        return Shown(f"{name} (#{value})" if name else f"#{value} (deleted)")
    if field is not None and field.choices and not isinstance(value, (dict, list)):
        label = dict(field.flatchoices).get(value)
        if label is not None and str(label) != str(value):
            return Shown(f"{label} ({value})")
    if isinstance(field, models.DateTimeField) and isinstance(value, str):
        moment = parse_datetime(value)
        if moment is not None:
            local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
            return Shown(dateformat.format(local, "j M Y H:i:s.v"))
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except ValueError:
            return Shown(value)
    if isinstance(value, (dict, list)):
        return Shown(json.dumps(value, indent=2, ensure_ascii=False), block=True)
    return Shown(str(value), block="\n" in str(value))


def line_diff(before: str, after: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Each side's lines, each with whether it changed (``difflib``)."""
    old, new = before.splitlines() or [""], after.splitlines() or [""]
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        left += [(line, tag != "equal") for line in old[i1:i2]]
        right += [(line, tag != "equal") for line in new[j1:j2]]
    return left, right


def readable_changes(event: AuditEvent) -> list[dict]:
    """The rows of an event's before / after table: every key of either side, labelled by its model
    field's verbose name ("System prompt", "Created by"), foreign keys by the name of the row they
    point to, choices by their label, JSON indented, and a long or multi-line text changed on both
    sides as a line diff, times in local time. A side without the key is absent (a creation has no
    before). The fields that changed come first."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    model = _model_of(event.object_type)
    names = _related_names(model, keys, [before, after])
    rows = []
    for key in keys:
        field = _field_for(model, key)
        has_before, has_after = key in before, key in after
        old, new = before.get(key), after.get(key)
        changed = has_before != has_after or old != new
        row = {
            "key": key,
            "label": _label(field, key),
            "changed": changed,
            "has_before": has_before,
            "has_after": has_after,
            "before": shown(old, field=field, key=key, names=names),
            "after": shown(new, field=field, key=key, names=names),
            "lines": None,
        }
        if changed and has_before and has_after and isinstance(old, str) and isinstance(new, str):
            if "\n" in old or "\n" in new or max(len(old), len(new)) > 80:
                row["lines"] = line_diff(old, new)
        rows.append(row)
    return sorted(rows, key=lambda row: not row["changed"])  # what changed first, in the record's order


def explorer_query(form: ExplorerForm, **extra) -> str:
    """The query string of the form's current filters (the export link, the pages)."""
    params = {k: v for k, v in form.data.items() if k in form.fields and v not in ("", None)}
    params.update(extra)
    return urlencode(params)
