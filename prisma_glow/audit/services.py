"""Writing and verifying the audit log. Every audited mutation in every app calls ``audit_record``."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from prisma_glow.audit.canonical import json_problem
from prisma_glow.audit.context import current_ip
from prisma_glow.audit.models import AGENT_MODEL, AuditEvent, AuditEventAgent
from prisma_glow.crypto import EncryptedTextField
from prisma_glow.locking import lock_for_write
from prisma_glow.tenancy.models import APIKey, Organization


def snapshot(instance: models.Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON-safe dict of a model instance's concrete fields, for ``before`` / ``after``.

    Secret fields (encrypted columns, hashes) are replaced by a marker so they never reach the log.
    """
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in exclude:
            continue
        value = field.value_from_object(instance)
        if isinstance(field, EncryptedTextField) or field.name in {"hashed_secret", "password"}:
            value = "(set)" if value else ""
        data[field.attname if field.is_relation else field.name] = value
    return as_stored(data)


def as_stored(value):
    """``value`` as a JSON column stores it and gives it back (through ``DjangoJSONEncoder``: dates,
    decimals, UUIDs as text), so that an event hashes the same when it is read back. A value JSON
    cannot carry (NaN, an infinity, an integer too long to read back) raises ``ValidationError``
    naming the field (the top-level key) and where in it: it could not be stored, nor hashed."""
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False))
    except ValueError:
        found = json_problem(value)
        if found is None:
            raise
        where, what = found
        field = where.split(".", 1)[0] if isinstance(value, dict) and where else "non_field_errors"
        raise ValidationError({field: [f"{what}: {where}." if where else f"{what}."]}) from None


def audit_record(
    *,
    organization,
    action: str,
    actor=None,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append an event to ``organization``'s hash chain.

    ``actor`` is a user, an ``APIKey``, or None (system). Call inside the transaction of the change it
    records, so that the change and its audit row commit together. The address recorded is that of the
    request being served (``prisma_glow.audit.context``), if any: services take none.
    """
    event = _event(organization=organization, action=action, actor=actor, obj=obj, before=before, after=after)
    # Part of the caller's transaction when there is one (no savepoint: a failed append must fail the
    # change it records), its own otherwise.
    with transaction.atomic(savepoint=False):
        event.prev_hash = _chain_head(organization)  # locks: events are stamped in chain order
        event.at = timezone.now()
        event.hash = event.compute_hash()
        event.save()
        agent_id = agent_of(obj)
        if agent_id is not None:
            AuditEventAgent.objects.create(event=event, agent_id=agent_id)
    return event


@functools.cache
def _agent_field(model) -> models.ForeignKey | None:
    """``model``'s foreign key to the agent (the one named ``agent`` when it has several), or None."""
    found = [
        f
        for f in model._meta.concrete_fields
        if f.many_to_one and f.related_model is not None and f.related_model._meta.label_lower == AGENT_MODEL
    ]
    return next((f for f in found if f.name == "agent"), found[0] if found else None)


def agent_of(obj: models.Model | None) -> int | None:
    """The id of the agent an event about ``obj`` belongs to, or None — one rule, by the object's
    relations rather than a list of actions, so that a new kind of object tied to an agent (a release,
    an activation request, an evaluation) is found without changing it:

    - ``obj`` is an agent: its id;
    - ``obj`` has a foreign key to the agent (a persona version, an assignment, a release, a run, a
      budget…): its value;
    - ``obj`` has a foreign key to a row that has one (a run's feedback): that row's agent, one query.
    """
    if obj is None:
        return None
    if obj._meta.label_lower == AGENT_MODEL:
        return obj.pk
    direct = _agent_field(obj.__class__)  # not type(): a request's user is a lazy object
    if direct is not None:
        return direct.value_from_object(obj)
    for field in obj._meta.concrete_fields:
        if not field.many_to_one or field.related_model is None:
            continue
        hop = _agent_field(field.related_model)
        related_id = field.value_from_object(obj)
        if hop is None or related_id is None:
            continue
        agent_id = (
            field.related_model._base_manager.filter(pk=related_id)
            .values_list(hop.attname, flat=True)
            .first()
        )
        if agent_id is not None:
            return agent_id
    return None


def audit_person_event(*, user, action: str, actor=None, after: dict | None = None) -> list[AuditEvent]:
    """Record an event about a person rather than one organisation's object (a sign-in locked, a
    second factor enrolled, a step-up): appended to the log of each organisation ``user`` belongs to,
    whichever one the session acts for, or to the system's log (no organisation) when ``user`` is None
    or belongs to none. One transaction: every log records it or none."""
    organizations: list[Organization | None] = []
    if user is not None:
        organizations = list(Organization.objects.filter(memberships__user=user).order_by("pk").distinct())
    with transaction.atomic():
        return [
            audit_record(organization=organization, action=action, actor=actor, obj=user, after=after)
            for organization in organizations or [None]
        ]


def _event(*, organization, action: str, actor, obj, before, after) -> AuditEvent:
    """The event ``audit_record`` appends, unsaved and not yet linked (no ``prev_hash`` or ``hash``)."""
    ip = current_ip.get()
    # As the column stores it (an IPv6 address in its canonical form), so that the hash, computed
    # from this value, still matches when the event is read back.
    ip = AuditEvent._meta.get_field("ip").get_prep_value(ip) if ip else ip
    event = AuditEvent(organization=organization, action=action, ip=ip)
    if isinstance(actor, APIKey):
        event.actor_api_key = actor
        event.actor_label = f"API key {actor.name}"
    elif actor is not None and getattr(actor, "is_authenticated", False):
        event.actor_user = actor
        event.actor_label = actor.get_username()
    if obj is not None:
        event.object_type = obj._meta.label_lower
        event.object_id = str(obj.pk)
        event.object_repr = str(obj)[:200]
    # Normalise before/after through JSON so the stored value hashes the same when re-read.
    event.before = as_stored(before) if before is not None else None
    event.after = as_stored(after) if after is not None else None
    return event


def _chain_head(organization) -> str:
    """The hash of the organisation's last event ("" for the first), after locking the organisation's
    row until the transaction ends, so that concurrent appends queue up and the chain never forks.

    Two statements: the lock (``lock_for_write``: the row ``FOR NO KEY UPDATE``, so rows inserted for
    the organisation do not wait for it), then the read. Under READ COMMITTED each statement takes a
    new snapshot, so the read, begun once the lock is granted, sees every event committed by the
    append that held the lock before. SQLite has no row locks: there every write transaction takes the
    database's write lock when it begins (see DATABASES in settings). Events without an organisation
    have no row to lock: their head is read without a lock, as it always was."""
    if organization is None:
        events = AuditEvent.objects.filter(organization__isnull=True)
    else:
        lock_for_write(organization=organization)
        events = AuditEvent.objects.filter(organization=organization)
    return events.order_by("-id").values_list("hash", flat=True).first() or ""


#: Why an event fails verification, in words for an operator.
BROKEN_LINK = "its link does not match the event before it (an event removed, inserted or moved)"
BROKEN_HASH = "its hash does not match its content (the event was changed)"


def audit_chain_walk(organization, *, chunk_size: int = 2000) -> Iterator[tuple[AuditEvent, str | None]]:
    """Each event of ``organization``'s chain (None: the events without one) in append order, with why
    it does not verify (``BROKEN_LINK`` / ``BROKEN_HASH``) or None. Reads ``chunk_size`` rows at a time
    (a server-side cursor on PostgreSQL), never the whole log at once.

    An event is checked against the stored hash of the one before it, so one edited row is reported
    once (its hash) and a removed row once (the next event's link); an event whose ``prev_hash`` does
    not match is not checked further. An unknown hash version is a changed event. A removed *last*
    event leaves no trace in the chain: the triggers and the database roles prevent it
    (docs/security.md)."""
    prev = ""
    events = AuditEvent.objects.filter(organization=organization).order_by("id")
    for event in events.iterator(chunk_size=chunk_size):
        reason = None
        if event.prev_hash != prev:
            reason = BROKEN_LINK
        else:
            try:
                intact = event.compute_hash() == event.hash
            except ValueError:
                intact = False
            if not intact:
                reason = BROKEN_HASH
        yield event, reason
        prev = event.hash


def audit_verify_chain(organization) -> list[int]:
    """Return the ids of events whose hash or link does not match (empty when the chain is intact)."""
    return [event.id for event, reason in audit_chain_walk(organization) if reason is not None]


# --- Audited updates ------------------------------------------------------------------------------


def _full_clean(instance: models.Model) -> None:
    instance.full_clean()


def audited_update[M: models.Model](
    instance: M,
    *,
    organization,
    actor,
    action: str,
    fields: Mapping[str, Any] | None = None,
    validate: Callable[[M], object] | None = _full_clean,
    snapshot_of: Callable[[M], dict[str, Any]] = snapshot,
    before_extra: dict[str, Any] | None = None,
    after_extra: dict[str, Any] | None = None,
) -> M:
    """Change a stored row and record it: what every update service does.

    Takes ``snapshot_of(instance)``, sets ``fields``, runs ``validate(instance)`` (``full_clean`` by
    default; a service's own check that also derives values — a slug, a default — or None for a
    transition the service has already checked), saves the columns that changed (``auto_now``
    columns included) and appends ``action`` to ``organization``'s audit log with the state before
    and after (``before_extra`` / ``after_extra`` merged in). Runs in the caller's transaction (its
    own without one): call it once the rows are locked (``prisma_glow.locking.lock_for_write``).
    """
    concrete = [f for f in instance._meta.concrete_fields if not f.primary_key]
    stored = {f.attname: f.value_from_object(instance) for f in concrete}
    before = snapshot_of(instance)
    for name, value in (fields or {}).items():
        setattr(instance, name, value)
    if validate is not None:
        validate(instance)
    changed = [
        f.name
        for f in concrete
        if getattr(f, "auto_now", False) or f.value_from_object(instance) != stored[f.attname]
    ]
    with transaction.atomic(savepoint=False):
        instance.save(update_fields=changed)
        audit_record(
            organization=organization,
            action=action,
            actor=actor,
            obj=instance,
            before=before | (before_extra or {}),
            after=snapshot_of(instance) | (after_extra or {}),
        )
    return instance
