"""The audit log in the staff UI: read-only. Its list is the audit explorer (``prisma_glow.audit.explorer``:
filters by agent, actor, action and dates, runs hidden unless asked for, a streamed CSV export); each
event's page shows its before and after side by side, labelled."""

from __future__ import annotations

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils import timezone

from prisma_glow.admin.base import OrganizationScopedAdmin, render_admin_page
from prisma_glow.admin.scoping import get_admin_access, scoped_get
from prisma_glow.audit.explorer import (
    action_label,
    agent_names,
    csv_rows,
    explorer_for,
    explorer_query,
    page_of,
    readable_changes,
)
from prisma_glow.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationScopedAdmin):
    """Who did what, when, to which object; before and after. Nobody edits or deletes it."""

    # The list is the explorer's (``changelist_view``), its filters its own.
    ordering = ["-at", "-id"]
    show_full_result_count = False
    policy_resource = "audit"  # audit.view: admins, like the API

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """The audit explorer; ``?export=csv`` streams the filtered list as CSV."""
        self.require(request, "audit.view")
        access = get_admin_access(request)
        explorer = explorer_for(
            request,
            self.get_queryset(request),  # scoped: the organisation's events (a superuser's: all)
            organization=access.organization,
            every_organization=access.is_superuser,
        )
        events = explorer.filtered
        if request.GET.get("export") == "csv" and explorer.form.is_valid():
            response = StreamingHttpResponse(csv_rows(events), content_type="text/csv; charset=utf-8")
            stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
            response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
            return response
        try:
            page = max(1, int(request.GET.get("page", "1")))
        except ValueError:
            page = 1
        rows, more = page_of(events, page)
        context = {
            "form": explorer.form,
            "events": rows,
            "page": page,
            "previous_query": explorer_query(explorer.form, page=page - 1) if page > 1 else "",
            "next_query": explorer_query(explorer.form, page=page + 1) if more else "",
            "export_query": explorer_query(explorer.form, export="csv"),
        }
        return render_admin_page(
            request, "admin/audit/auditevent/explorer.html", context, title="Audit log", model_admin=self
        )

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
        link = getattr(event, "agent_link", None)  # None: the event is about no agent
        context = {
            "event": event,
            "action_label": action_label(event.action),
            "agent_name": agent_names([link.agent_id]).get(link.agent_id) if link else "",
            "changes": readable_changes(event),
            "history": list(history),
        }
        return render_admin_page(
            request,
            "admin/audit/auditevent/detail.html",
            context,
            title=f"{action_label(event.action)} · {event.object_repr}",
            model_admin=self,
        )
