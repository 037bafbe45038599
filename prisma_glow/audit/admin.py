"""The audit log in the staff UI: read-only, filterable, each event with its before and after."""

from __future__ import annotations

from django.contrib import admin

from prisma_glow.admin.base import OrganizationScopedAdmin, render_admin_page
from prisma_glow.admin.scoping import scoped_get
from prisma_glow.audit.models import AuditEvent


def field_changes(before, after) -> list[dict]:
    """Rows for a before/after table: every key of either side; a side without the key is absent
    (a creation has no before, a deletion no after), and changed rows are flagged."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return [
        {
            "field": key,
            "has_before": key in before,
            "has_after": key in after,
            "before": before.get(key),
            "after": after.get(key),
            "changed": (key in before) != (key in after) or before.get(key) != after.get(key),
        }
        for key in keys
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationScopedAdmin):
    """Who did what, when, to which object; before and after. Nobody edits or deletes it."""

    list_display = ["at", "actor_label", "action", "object_type", "object_repr", "ip"]
    list_filter = ["action", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["action", "object_repr", "actor_label", "object_id"]
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    show_full_result_count = False
    policy_resource = "audit"  # audit.view: admins, like the API

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.require(request, "audit.view")
        event = scoped_get(AuditEvent.objects.all(), request, pk=object_id)
        history = (
            AuditEvent.objects.filter(
                organization_id=event.organization_id,
                object_type=event.object_type,
                object_id=event.object_id,
            )
            .exclude(pk=event.pk)
            .order_by("-at", "-id")[:20]
            if event.object_id
            else []
        )
        context = {
            "event": event,
            "changes": field_changes(event.before, event.after),
            "history": list(history),
        }
        return render_admin_page(
            request,
            "admin/audit/auditevent/detail.html",
            context,
            title=f"{event.action} · {event.object_repr}",
            model_admin=self,
        )
