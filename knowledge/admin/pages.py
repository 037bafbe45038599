"""Knowledge pages: a knowledge base's documents (multi-file upload, live processing status), a
document with its chunks, and the retrieval tester. Writes go through ``knowledge.services``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect

from knowledge import services
from knowledge.ingest.parsers import SUPPORTED_EXTENSIONS
from knowledge.models import Document, DocumentStatus, KnowledgeBase
from knowledge.screening import screening_summary
from knowledge.search import search
from prisma_glow.admin.base import add_errors_to_form, run_service, validation_messages
from prisma_glow.admin.htmx import htmx_partial, is_htmx
from prisma_glow.admin.scoping import get_admin_access, scope_queryset, scoped_get

DOCUMENTS_PER_PAGE = 50
CHUNKS_PER_PAGE = 50


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by the knowledge service on its own."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(SUPPORTED_EXTENSIONS)}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        # Each file is checked by ``document_create_many`` (type, size, empty, duplicate), which
        # reports the problem per file; one bad file must not reject the others.
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if self.required and not files:
            raise ValidationError(self.error_messages["required"], code="required")
        return files


class UploadForm(forms.Form):
    files = MultipleFileField(
        required=False,
        label="Files",
        help_text="PDF, Word (.docx), Markdown, HTML or plain text. Several at once.",
    )
    text_title = forms.CharField(max_length=300, required=False, label="Or paste a text: title")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Text")
    jurisdiction = forms.CharField(max_length=20, required=False, help_text="e.g. EU, DE, UK; blank: any.")
    effective_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    effective_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self):
        data = super().clean()
        if not data.get("files") and not (data.get("text") or "").strip():
            raise ValidationError("Choose at least one file, or paste a text.")
        start, end = data.get("effective_from"), data.get("effective_to")
        if start and end and end < start:
            self.add_error("effective_to", "The end of the effective period cannot be before its start.")
        return data


class DocumentForm(forms.Form):
    title = forms.CharField(max_length=300)
    jurisdiction = forms.CharField(max_length=20, required=False)
    effective_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    effective_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("effective_from"), data.get("effective_to")
        if start and end and end < start:
            self.add_error("effective_to", "The end of the effective period cannot be before its start.")
        return data


class SearchForm(forms.Form):
    query = forms.CharField(max_length=1000, label="Question or keywords")
    knowledge_bases = forms.ModelMultipleChoiceField(
        queryset=KnowledgeBase.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: all of the organisation's knowledge bases.",
    )
    top_k = forms.IntegerField(min_value=1, max_value=50, initial=5, label="Passages")
    min_score = forms.FloatField(min_value=0, initial=0, required=False, label="Minimum score")
    jurisdiction = forms.CharField(max_length=20, required=False)
    as_of = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), label="As of"
    )

    def __init__(self, *args, knowledge_bases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["knowledge_bases"].queryset = knowledge_bases


def _documents_context(request, kb):
    documents = kb.documents.select_related("uploaded_by").order_by("-created_at", "-id")
    page = Paginator(documents, DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    counts = kb.documents.aggregate(
        total=Count("id"),
        busy=Count("id", filter=Q(status__in=[DocumentStatus.PENDING, DocumentStatus.PROCESSING])),
        failed=Count("id", filter=Q(status=DocumentStatus.FAILED)),
        chunks=Sum("chunk_count"),
    )
    return {"page_obj": page, "documents": page.object_list, "counts": counts, "polling": counts["busy"] > 0}


def knowledge_base_documents(model_admin, request, kb_id):
    """Upload several documents at once and watch them get processed (the table polls while busy).

    Each file is stored on its own (``services.document_create_many``): the refused ones are listed
    with their reasons and the others are kept.
    """
    kb = scoped_get(KnowledgeBase.objects.all(), request, pk=kb_id)
    can_write = model_admin.allows(request, "document.add")
    status = 200
    form = UploadForm()
    if request.method == "POST":
        model_admin.require(request, "document.add")
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            common = {
                "jurisdiction": data.get("jurisdiction") or "",
                "effective_from": data.get("effective_from"),
                "effective_to": data.get("effective_to"),
            }
            added, refused = [], []
            outcomes = services.document_create_many(
                knowledge_base=kb, actor=request.user, files=data["files"], **common
            )
            for outcome in outcomes:
                if outcome.ok:
                    added.append(outcome.document.title)
                else:
                    refused.append(f"{outcome.filename}: {outcome.error}")
            if (data.get("text") or "").strip():
                doc, error = run_service(
                    services.document_create,
                    knowledge_base=kb,
                    actor=request.user,
                    text=data["text"],
                    title=data.get("text_title") or None,
                    **common,
                )
                if error is None:
                    added.append(doc.title)
                else:
                    refused.append(
                        f"Text: {' '.join(m.split(': ', 1)[-1] for m in validation_messages(error))}"
                    )
            if added:
                messages.success(
                    request,
                    f"{len(added)} document{'s' if len(added) != 1 else ''} added; processing has started.",
                )
            for line in refused:
                messages.error(request, line)
            if not refused:
                return HttpResponseRedirect(request.path)
            status = 400
        else:
            status = 400
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": kb.name,
        "kb": kb,
        "form": form,
        "can_write": can_write,
        **_documents_context(request, kb),
    }
    return htmx_partial(
        request, "admin/knowledge/knowledgebase/documents.html", context, partial="documents", status=status
    )


def document_detail(model_admin, request, object_id):
    """A document: its status and metadata (editable), and its chunks, paginated."""
    document = scoped_get(
        Document.objects.select_related("knowledge_base", "uploaded_by"), request, pk=object_id
    )
    can_write = model_admin.allows(request, "document.change", document)
    status = 200
    initial = {
        "title": document.title,
        "jurisdiction": document.jurisdiction,
        "effective_from": document.effective_from,
        "effective_to": document.effective_to,
    }
    form = DocumentForm(initial=initial)
    if request.method == "POST":
        model_admin.require(request, "document.change", document)
        if "_reindex" in request.POST:
            _, error = run_service(services.document_reindex, document=document, actor=request.user)
            if error is None:
                messages.success(request, "The document is being processed again.")
            else:
                for line in validation_messages(error):
                    messages.error(request, line)
            return redirect(request.path)
        form = DocumentForm(request.POST)
        if form.is_valid():
            changes = {k: v for k, v in form.cleaned_data.items() if initial.get(k) != v}
            _, error = run_service(
                services.document_update,
                document=document,
                actor=request.user,
                **changes,
            )
            if error is None:
                messages.success(request, "The document was saved.")
                return redirect(request.path)
            add_errors_to_form(form, error)
        status = 400
    if is_htmx(request) and document.status in (DocumentStatus.READY, DocumentStatus.FAILED):
        # Polling saw the processing end: reload the whole page so the chunks appear.
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    chunks = Paginator(document.chunks.order_by("ordinal"), CHUNKS_PER_PAGE).get_page(request.GET.get("page"))
    for chunk in chunks:
        chunk.injection = screening_summary(screening=chunk.screening, text=chunk.text)
    # Screened at ingestion: the passages scoring as injection attempts at the default threshold.
    suspicious = [
        c.ordinal
        for c in document.chunks.order_by("ordinal").only("ordinal", "text", "screening")
        if screening_summary(screening=c.screening, text=c.text)
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": document.title,
        "document": document,
        "form": form,
        "chunks": chunks,
        "suspicious": suspicious,
        "can_write": can_write,
    }
    return htmx_partial(
        request, "admin/knowledge/document/detail.html", context, partial="status", status=status
    )


def retrieval_tester(model_admin, request):
    """Ask a question of the knowledge bases; see the ranked passages with the matched terms marked."""
    model_admin.require(request, "knowledge_base.search")
    knowledge_bases = scope_queryset(KnowledgeBase.objects.order_by("name"), request, all_for_superuser=False)
    passages = None
    status = 200
    if "query" in request.GET:
        form = SearchForm(request.GET, knowledge_bases=knowledge_bases)
        if form.is_valid():
            data = form.cleaned_data
            chosen = list(data["knowledge_bases"]) or list(knowledge_bases)
            passages = search(
                chosen,
                data["query"],
                top_k=data["top_k"],
                as_of=data.get("as_of"),
                jurisdiction=data.get("jurisdiction") or None,
                min_score=data.get("min_score") or 0.0,
                organization=get_admin_access(request).organization,
            )
        else:
            status = 400
    else:
        form = SearchForm(knowledge_bases=knowledge_bases, initial={"top_k": 5})
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Retrieval tester",
        "form": form,
        "passages": passages,
        "has_knowledge": knowledge_bases.exists(),
    }
    return htmx_partial(
        request, "admin/knowledge/knowledgebase/search.html", context, partial="passages", status=status
    )
