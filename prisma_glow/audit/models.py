"""The audit log: append-only, hash-chained per organisation."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from prisma_glow.audit.canonical import canonical_json

#: The hash version of new events. 1: ``json.dumps`` of the event (numbers as Python writes them, which
#: PostgreSQL's jsonb may give back otherwise); 2: ``canonical_json``, numbers by their value, and the
#: version itself hashed (see ``prisma_glow.audit.canonical``).
HASH_VERSION = 2


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One audited action: who (a user or an API key), what, on which object, before and after.

    Rows are never updated or deleted: the model refuses it, and on PostgreSQL so does the database
    (triggers, audit migration 0006). Each row's ``hash`` covers its content and the previous row's
    hash in the same organisation, so an edit or a removal in the database breaks the chain
    (``prisma_glow.audit.services.audit_verify_chain``).
    """

    organization = models.ForeignKey(
        "tenancy.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,  # the indexes below all begin with it
    )
    # PROTECT, not SET_NULL: the actor's id is hashed, and the database refuses every UPDATE of an
    # event (audit migration 0006), so a user or key that acted is deactivated or revoked, not deleted.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "tenancy.APIKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, help_text="Who acted, kept after deletion.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, unique=True)
    # db_default 1: rows written without it (before migration 0004 added it, or by code that predates
    # it during a deployment) were hashed the version 1 way.
    hash_version = models.PositiveSmallIntegerField(
        default=HASH_VERSION,
        db_default=1,
        editable=False,
        help_text="How the hash was computed (1: before canonical numbers; 2: canonical JSON).",
    )

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "organization"
    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The chain head (an organisation's last event) in one index probe: found through the
            # primary key instead, a quiet organisation's append read every event appended since by
            # the others (67 ms after 300,000 of them).
            models.Index(fields=["organization", "id"], name="audit_chain_idx"),
            models.Index(fields=["organization", "-at"]),
            models.Index(fields=["organization", "object_type", "object_id"]),
            # The explorer's action filter, and its list of the actions an organisation's log holds
            # (``explorer.actions_in``: one probe per distinct action, however long the log).
            models.Index(fields=["organization", "action", "-at"], name="audit_org_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label or 'system'} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def compute_hash(self) -> str:
        """The event's hash — the one function that computes it, for every hash version: SHA-256 (hex
        digits) of the event's canonical JSON, keys sorted, no spaces, ``prev_hash`` (the link) included.
        Written as the event's ``hash_version`` says, so events hashed before version 2 still verify."""
        payload = {
            "organization": self.organization_id,
            "actor_user": self.actor_user_id,
            "actor_api_key": self.actor_api_key_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "before": self.before,
            "after": self.after,
            "ip": self.ip,
            "at": self.at.isoformat(),
            "prev_hash": self.prev_hash,
        }
        if self.hash_version == 1:
            data = json.dumps(payload, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
        elif self.hash_version == 2:
            payload["hash_version"] = 2
            data = canonical_json(payload)
        else:
            raise ValueError(f"Unknown audit hash version {self.hash_version!r}.")
        return hashlib.sha256(data.encode()).hexdigest()


#: The model whose events the explorer gathers per agent (``AuditEventAgent``), named by its label: the
#: audit app sits below the agents app and imports none of it.
AGENT_MODEL = "agents.agent"


class AuditEventAgentQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events' agents are append-only.")

    def delete(self):
        raise PermissionError("Audit events' agents are append-only.")


class AuditEventAgent(models.Model):
    """The agent an audit event belongs to: its persona versions, assignments, releases, settings,
    runs… — written by ``audit_record`` with the event (``agent_of``), backfilled for earlier events by
    audit migration 0007.

    A side table, not a column of ``AuditEvent``: a column would not change the events' hashes (they
    cover named fields only), but filling it for the existing rows is an UPDATE, which the append-only
    triggers refuse. Append-only too (the model here, triggers on PostgreSQL). ``agent_id`` is a plain
    integer, not a foreign key: a deleted agent's events keep their agent, and the audit app depends on
    no app above it.
    """

    event = models.OneToOneField(
        AuditEvent, primary_key=True, on_delete=models.CASCADE, related_name="agent_link"
    )
    agent_id = models.BigIntegerField(db_index=True)

    #: How a row reaches its organisation (scoping of the staff UI and the API).
    organization_path = "event__organization"
    objects = AuditEventAgentQuerySet.as_manager()

    class Meta:
        verbose_name = "audit event's agent"

    def __str__(self) -> str:
        return f"event {self.event_id} → agent {self.agent_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events' agents are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events' agents are append-only.")
