"""Configuration stamps: how a process knows that what it cached about an organisation's agents is current.

The runtime keeps, per process, what it loads for an agent before a run (persona, provider, tools,
knowledge bases, guardrails, approved examples; ``agents.runtime.loading``), so that a run costs one
small query instead of half a dozen. Each organisation has a ``config_stamp`` (a UUID) that is
replaced, in the same transaction, whenever a row that makes up a run's configuration changes; a
cached entry is used only while the stamp it was loaded under is still the organisation's stamp.

A model takes part by declaring ``config_scope``, the path from its rows to their organisation's id
(``"organization_id"``, or ``"agent__organization_id"`` for rows that belong to an agent), and by using
``ConfigQuerySet`` as its manager. Every write path then replaces the stamp:

- ``save()`` and ``delete()`` of an instance, ``QuerySet.delete()`` and cascaded deletions (signals,
  connected by ``connect_all`` for each model that declares a scope; with receivers connected, Django
  deletes these models row by row and sends the signal for each);
- ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()``, which send no signals
  (``ConfigQuerySet``).

A row without an organisation (a built-in tool) belongs to every organisation: changing it replaces
every stamp. UUIDs rather than counters, so that a reused primary key (SQLite reuses them) can never
meet a stale entry under a stamp that happens to match.

Replacing the stamp UPDATEs the organisation's row, which locks it until the transaction ends (``FOR
NO KEY UPDATE``: the stamp is no key). Services lock that row first of all
(``prisma_glow.locking.lock_for_write``), so the lock is already theirs when a signal gets here; a
write path that does not lock first takes it here, late, and risks the deadlocks that lock order
prevents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connection, models
from django.db.models.signals import post_delete, post_save

#: Stands for "every organisation" (a change to a row that has no organisation).
EVERY_ORGANIZATION = object()


def new_stamp() -> uuid.UUID:
    return uuid.uuid4()


def bump(organization_ids) -> None:
    """Give the organisations ``organization_ids`` (ids, a queryset of ids, or ``EVERY_ORGANIZATION``)
    a new stamp."""
    from prisma_glow.tenancy.models import Organization

    organizations = Organization.objects.all()
    several = organization_ids is EVERY_ORGANIZATION
    if organization_ids is not EVERY_ORGANIZATION:
        if isinstance(organization_ids, Iterable) and not isinstance(organization_ids, models.QuerySet):
            organization_ids = sorted({pk for pk in organization_ids if pk is not None})
            if not organization_ids:
                return
            several = len(organization_ids) > 1
        organizations = organizations.filter(pk__in=organization_ids)
    if several and connection.in_atomic_block and connection.features.has_select_for_update:
        # Rows in id order, as every other writer of several organisations takes them (an UPDATE
        # locks them in whatever order its plan visits them). One organisation's writes lock it
        # first of all (prisma_glow.locking), so this UPDATE takes no lock they do not hold.
        list(organizations.select_for_update(no_key=True).order_by("pk").values("pk"))
    organizations.update(config_stamp=new_stamp())


def _scope(model) -> str:
    return model.config_scope


def _organizations_of_rows(queryset: models.QuerySet):
    """The organisations of the rows of ``queryset`` (evaluated now, before they change or go)."""
    scope = _scope(queryset.model)
    ids = set(queryset.order_by().values_list(scope, flat=True))
    if None in ids and scope == "organization_id":
        return EVERY_ORGANIZATION
    return ids


def _organizations_of_instances(model, instances) -> object:
    """The organisations of unsaved or saved ``instances`` (read from their attributes)."""
    scope = _scope(model)
    ids: set = set()
    if "__" not in scope:
        for instance in instances:
            value = getattr(instance, scope)
            if value is None:
                return EVERY_ORGANIZATION
            ids.add(value)
        return ids
    # "agent__organization_id": the instance holds the agent's id; the agent holds the organisation.
    relation, rest = scope.split("__", 1)
    field = model._meta.get_field(relation)
    parent_ids = {getattr(instance, field.attname) for instance in instances} - {None}
    if not parent_ids:
        return set()
    return field.related_model._base_manager.filter(pk__in=parent_ids).values(rest)


class ConfigQuerySet(models.QuerySet):
    """A queryset whose bulk writes replace the stamp of the organisations whose rows they touch."""

    def update(self, **kwargs):
        organizations = _organizations_of_rows(self)
        rows = super().update(**kwargs)
        if rows:
            bump(organizations)
        return rows

    update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        objs = super().bulk_create(objs, *args, **kwargs)
        if objs:
            bump(_organizations_of_instances(self.model, objs))
        return objs

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows:
            bump(_organizations_of_instances(self.model, objs))
        return rows


def _changed(sender, instance, **kwargs) -> None:
    if kwargs.get("raw"):  # loading fixtures
        return
    bump(_organizations_of_instances(sender, [instance]))


def connect_all(models_: Iterable) -> None:
    """Connect the save and delete receivers for every model that declares ``config_scope``.

    Connected per model (never for every sender), so that models outside the configuration keep
    Django's fast cascading deletes.
    """
    for model in models_:
        if getattr(model, "config_scope", None) and not model._meta.abstract:
            post_save.connect(_changed, sender=model, dispatch_uid=f"config_stamp_save_{model._meta.label}")
            post_delete.connect(
                _changed, sender=model, dispatch_uid=f"config_stamp_delete_{model._meta.label}"
            )
