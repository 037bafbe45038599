"""Staff pages for knowledge: knowledge bases, their documents and chunks, the retrieval tester."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from knowledge import services
from knowledge.admin import pages as admin_pages
from knowledge.admin.uploads import bounded_uploads
from knowledge.models import Document, KnowledgeBase
from knowledge.selectors import knowledge_base_list_with_counts
from prisma_glow.admin.base import OrganizationScopedAdmin, adopt
from prisma_glow.admin.scoping import get_admin_access, scope_queryset
from prisma_glow.ids import parse_id


class OrganizationKnowledgeBaseFilter(admin.SimpleListFilter):
    """Documents by knowledge base, among the organisation's knowledge bases."""

    title = "knowledge base"
    parameter_name = "knowledge_base"

    def lookups(self, request, model_admin):
        bases = scope_queryset(KnowledgeBase.objects.order_by("name"), request, all_for_superuser=False)
        return [(str(pk), name) for pk, name in bases.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if (pk := parse_id(value)) is not None:
            return queryset.filter(knowledge_base_id=pk)
        return queryset


class KnowledgeBaseForm(forms.ModelForm):
    class Meta:
        model = KnowledgeBase
        fields = ["name", "description", "chunk_size", "chunk_overlap", "search_config"]

    def clean(self):
        data = super().clean()
        size, overlap = data.get("chunk_size"), data.get("chunk_overlap")
        if size is not None and overlap is not None and overlap >= size:
            self.add_error("chunk_overlap", "The chunk overlap must be smaller than the chunk size.")
        return data


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(OrganizationScopedAdmin):
    """Knowledge bases; each one's page lists its documents and takes uploads."""

    form = KnowledgeBaseForm
    policy_resource = "knowledge_base"
    list_display = [
        "name_link",
        "description",
        "document_total",
        "chunk_total",
        "updated_at",
        "settings_link",
    ]
    list_display_links = None
    search_fields = ["name", "description"]
    ordering = ["name"]
    change_list_template = "admin/knowledge/knowledgebase/change_list.html"

    def get_queryset(self, request):
        return knowledge_base_list_with_counts(queryset=super().get_queryset(request))

    @admin.display(description="Name", ordering="name")
    def name_link(self, obj):
        url = reverse("admin:knowledge_knowledgebase_documents", args=[obj.pk])
        return format_html('<a href="{}"><strong>{}</strong></a>', url, obj.name)

    @admin.display(description="Documents", ordering="document_count")
    def document_total(self, obj):
        return obj.document_count

    @admin.display(description="Chunks", ordering="chunk_count")
    def chunk_total(self, obj):
        return obj.chunk_count

    @admin.display(description="")
    def settings_link(self, obj):
        return format_html(
            '<a href="{}">Settings</a>', reverse("admin:knowledge_knowledgebase_change", args=[obj.pk])
        )

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in KnowledgeBaseForm.Meta.fields if k in form.cleaned_data}
        if change:
            changed = {k: v for k, v in data.items() if k in form.changed_data}
            result = self.call_service(
                services.knowledge_base_update,
                knowledge_base=obj,
                actor=request.user,
                **changed,
            )
        else:
            result = self.call_service(
                services.knowledge_base_create,
                organization=get_admin_access(request).organization,
                actor=request.user,
                **data,
            )
        adopt(obj, result)

    def delete_model(self, request, obj):
        self.call_service(services.knowledge_base_delete, knowledge_base=obj, actor=request.user)

    def get_deleted_objects(self, objs, request):
        # A summary, not one line per chunk (a knowledge base holds thousands); agents using the
        # knowledge base protect it, as the service would refuse. The assignments are read through
        # their reverse relation ("assignments", declared by the agents app): knowledge imports no agents.
        ids = [o.pk for o in objs]
        uses = (
            KnowledgeBase.objects.filter(pk__in=ids, assignments__isnull=False)
            .order_by("assignments__pk")
            .values_list("assignments__agent__name", "name")
        )
        protected = [f"{agent} uses {name}" for agent, name in uses]
        documents = Document.objects.filter(knowledge_base_id__in=ids)
        counts = {
            "knowledge bases": len(ids),
            "documents": documents.count(),
            "chunks": documents.aggregate(n=Sum("chunk_count"))["n"] or 0,
        }
        return [str(o) for o in objs], counts, set(), protected

    def response_add(self, request, obj, post_url_continue=None):
        if "_addanother" not in request.POST and "_continue" not in request.POST:
            return HttpResponseRedirect(reverse("admin:knowledge_knowledgebase_documents", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "search/",
                view(lambda request: admin_pages.retrieval_tester(self, request)),
                name="knowledge_knowledgebase_search",
            ),
            path(
                "<int:kb_id>/documents/",
                view(
                    bounded_uploads(
                        lambda request, kb_id: admin_pages.knowledge_base_documents(self, request, kb_id)
                    )
                ),
                name="knowledge_knowledgebase_documents",
            ),
        ]
        return custom + super().get_urls()


@admin.register(Document)
class DocumentAdmin(OrganizationScopedAdmin):
    """Every document of the organisation; uploads happen on a knowledge base's page."""

    policy_resource = "document"

    list_display = [
        "title",
        "knowledge_base",
        "status_badge",
        "mime_type",
        "chunk_count",
        "jurisdiction",
        "created_at",
    ]
    list_filter = ["status", OrganizationKnowledgeBaseFilter, "jurisdiction"]
    search_fields = ["title"]
    list_select_related = ["knowledge_base"]
    ordering = ["-created_at"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="pg-badge pg-badge-{}">{}</span>', obj.status, obj.get_status_display()
        )

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return admin_pages.document_detail(self, request, object_id)

    def get_deleted_objects(self, objs, request):
        # A summary instead of one line per chunk.
        chunks = sum(o.chunk_count for o in objs)
        return [str(o) for o in objs], {"documents": len(objs), "chunks": chunks}, set(), []

    def response_delete(self, request, obj_display, obj_id):
        self.message_user(request, f"The document “{obj_display}” was deleted.")
        return HttpResponseRedirect(reverse("admin:knowledge_knowledgebase_changelist"))

    def delete_model(self, request, obj):
        self.call_service(services.document_delete, document=obj, actor=request.user)
