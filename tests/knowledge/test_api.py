"""Knowledge API: generic resource tests plus upload, processing status, reindex and search."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from knowledge import services
from knowledge.models import Chunk, Document, KnowledgeBase
from prisma_glow.audit.models import AuditEvent
from prisma_glow.tenancy.models import Role, Scope
from tests.factories import AgentKnowledgeFactory, ChunkFactory, DocumentFactory, KnowledgeBaseFactory
from tests.knowledge.conftest import make_docx, make_pdf
from tests.support.api import (
    APIResourceTests,
    ReadOnlyAPIResourceTests,
    assert_error,
    results,
)

pytestmark = pytest.mark.django_db

KB_URL = "/api/v1/knowledge-bases/"


def documents_url(kb) -> str:
    return f"{KB_URL}{kb.pk}/documents/"


class TestKnowledgeBaseAPI(APIResourceTests):
    model = KnowledgeBase
    factory = KnowledgeBaseFactory
    url = KB_URL
    create_data = {"name": "EU VAT guidance", "description": "Firm guidance", "chunk_size": 900,
                   "chunk_overlap": 100, "search_config": "english"}  # fmt: skip
    update_data = {"description": "Updated guidance"}
    invalid_data = {"name": "", "chunk_size": 10}

    def make_list_objects(self, organization, parent, count):
        bases = []
        for _ in range(count):
            kb = KnowledgeBaseFactory(organization=organization)
            DocumentFactory(knowledge_base=kb, chunk_count=3)
            bases.append(kb)
        return bases


class TestDocumentAPI(APIResourceTests):
    model = Document
    url = "/api/v1/knowledge-bases/{parent.pk}/documents/"
    organization_lookup = "knowledge_base__organization"
    parent_lookup = "knowledge_base"
    create_data = {"title": "Reverse charge memo", "text": "# Reverse charge\n\nThe customer accounts for VAT.",
                   "jurisdiction": "EU"}  # fmt: skip
    update_data = {"title": "Renamed memo", "jurisdiction": "DE"}
    invalid_data = {"text": "x", "effective_from": "not a date"}
    invalid_fields = ("effective_from",)

    @pytest.fixture(autouse=True)
    def _tasks(self, _knowledge_settings):
        return _knowledge_settings

    def make_parent(self, organization):
        return KnowledgeBaseFactory(organization=organization)

    def make_object(self, organization, parent=None):
        return DocumentFactory(knowledge_base=parent)


class TestChunkAPI(ReadOnlyAPIResourceTests):
    model = Chunk
    url = "/api/v1/knowledge-bases/{parent.knowledge_base_id}/documents/{parent.pk}/chunks/"
    organization_lookup = "document__knowledge_base__organization"
    parent_lookup = "document"

    def make_parent(self, organization):
        return DocumentFactory(knowledge_base=KnowledgeBaseFactory(organization=organization))

    def make_object(self, organization, parent=None):
        return ChunkFactory(document=parent)


# --- Uploads and processing ---------------------------------------------------------------------


def test_multipart_pdf_upload_is_processed_with_status_and_chunk_count(editor_client, kb):
    data = make_pdf(["First page about VAT.", "Second page about the reverse charge."])
    response = editor_client.post(
        documents_url(kb),
        {
            "file": SimpleUploadedFile("VAT manual.pdf", data, "application/pdf"),
            "jurisdiction": "eu",
            "effective_from": "2025-01-01",
        },  # fmt: skip
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert body["title"] == "VAT manual"
    assert body["file_name"] == "VAT manual.pdf"
    assert body["chunk_count"] == 2 and body["page_count"] == 2
    assert body["jurisdiction"] == "EU" and body["effective_from"] == "2025-01-01"

    detail = editor_client.get(f"{documents_url(kb)}{body['id']}/").json()
    assert detail["status"] == "ready" and detail["chunk_count"] == 2
    chunks = results(editor_client.get(f"{documents_url(kb)}{body['id']}/chunks/"))
    assert [(c["ordinal"], c["page"]) for c in chunks] == [(0, 1), (1, 2)]


def test_docx_upload_with_api_key(key_client, kb):
    data = make_docx([("h1", "Audit memo"), ("p", "Going concern assessment.")])
    response = key_client.post(
        documents_url(kb), {"file": SimpleUploadedFile("memo.docx", data)}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "ready"
    assert AuditEvent.objects.filter(action="document.create", actor_api_key__isnull=False).exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "Unsupported file type"),
        ("fake.pdf", b"plain text pretending", "not a PDF"),
    ],
)
def test_refused_uploads_answer_400_with_the_reason(editor_client, kb, name, data, message):
    response = editor_client.post(
        documents_url(kb), {"file": SimpleUploadedFile(name, data)}, format="multipart"
    )
    body = assert_error(response, 400, fields=["file"])
    assert message in body["errors"]["file"][0]
    assert not Document.objects.exists()


def test_encrypted_and_oversized_uploads_answer_400(editor_client, kb, settings):
    locked = make_pdf(["Secret"], password="pw")
    response = editor_client.post(
        documents_url(kb), {"file": SimpleUploadedFile("locked.pdf", locked)}, format="multipart"
    )
    assert "password-protected" in assert_error(response, 400, fields=["file"])["message"]
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 100
    response = editor_client.post(
        documents_url(kb), {"file": SimpleUploadedFile("big.txt", b"x" * 101)}, format="multipart"
    )
    assert "too large" in assert_error(response, 400, fields=["file"])["message"]


def test_both_or_neither_source_is_400(editor_client, kb):
    assert_error(
        editor_client.post(documents_url(kb), {"title": "Nothing"}, format="json"), 400, fields=["file"]
    )
    response = editor_client.post(
        documents_url(kb),
        {"file": SimpleUploadedFile("a.txt", b"a"), "text": "b"},
        format="multipart",
    )
    assert_error(response, 400, fields=["file"])


def test_duplicate_upload_answers_409_naming_the_existing_document(editor_client, kb):
    first = editor_client.post(documents_url(kb), {"text": "Same memo.", "title": "Original"}, format="json")
    assert first.status_code == 201
    again = editor_client.post(documents_url(kb), {"text": "Same memo.", "title": "Copy"}, format="json")
    body = assert_error(again, 409)
    assert f'"Original" (document {first.json()["id"]}' in body["message"]
    assert Document.objects.count() == 1


def test_parse_failure_is_visible_as_failed_with_error(editor_client, kb):
    response = editor_client.post(
        documents_url(kb),
        {"file": SimpleUploadedFile("broken.pdf", b"%PDF-1.4\n garbage")},
        format="multipart",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed" and body["error"] and body["chunk_count"] == 0
    listed = editor_client.get(documents_url(kb), {"status": "failed"})
    assert [d["id"] for d in results(listed)] == [body["id"]]


def test_reindex_action(editor_client, viewer_client, kb, editor):
    document = services.document_create(knowledge_base=kb, actor=editor, text="Revenue memo.")
    url = f"{documents_url(kb)}{document.pk}/reindex/"
    assert_error(viewer_client.post(url), 403)
    response = editor_client.post(url)
    assert response.status_code == 202
    assert response.json()["status"] == "ready"
    assert AuditEvent.objects.filter(action="document.reindex", object_id=str(document.pk)).exists()
    response = editor_client.post(f"{KB_URL}{kb.pk}/reindex/")
    assert response.status_code == 202 and response.json()["document_count"] == 1


def test_documents_of_another_organisations_knowledge_base_are_404(editor_client, other_kb):
    document = DocumentFactory(knowledge_base=other_kb)
    assert_error(editor_client.get(documents_url(other_kb)), 404)
    assert_error(editor_client.post(documents_url(other_kb), {"text": "x"}, format="json"), 404)
    assert_error(editor_client.post(f"{documents_url(other_kb)}{document.pk}/reindex/"), 404)
    assert_error(editor_client.get(f"{documents_url(other_kb)}{document.pk}/chunks/"), 404)


def test_chunks_of_a_document_in_another_knowledge_base_are_404(editor_client, org):
    kb_a, kb_b = KnowledgeBaseFactory(organization=org), KnowledgeBaseFactory(organization=org)
    document = DocumentFactory(knowledge_base=kb_b)
    assert_error(editor_client.get(f"{documents_url(kb_a)}{document.pk}/chunks/"), 404)


def test_knowledge_base_in_use_cannot_be_deleted(editor_client, kb):
    AgentKnowledgeFactory(knowledge_base=kb, agent__organization=kb.organization)
    assert_error(editor_client.delete(f"{KB_URL}{kb.pk}/"), 409)
    assert KnowledgeBase.objects.filter(pk=kb.pk).exists()


# --- Search -------------------------------------------------------------------------------------


@pytest.fixture
def searchable(kb, other_kb, editor):
    services.document_create(knowledge_base=kb, actor=editor, title="VAT manual",
                             text="# Reverse charge\n\nThe customer accounts for VAT under the reverse charge.",
                             jurisdiction="EU")  # fmt: skip
    services.document_create(knowledge_base=kb, actor=editor, title="Old rates", text="VAT charge rates of 2019.",
                             effective_to="2019-12-31")  # fmt: skip
    services.document_create(
        knowledge_base=other_kb, actor=None, title="Other firm", text="Reverse charge secrets."
    )
    return kb


def test_search_returns_ranked_passages_with_citations(viewer_client, searchable):
    response = viewer_client.post(
        f"{KB_URL}{searchable.pk}/search/", {"query": "reverse charge"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 2 and body["query"] == "reverse charge" and body["took_ms"] >= 0
    first = body["results"][0]
    assert first["document_title"] == "VAT manual"
    assert first["citation"] == "VAT manual, § Reverse charge"
    assert first["highlights"] and "<mark>" in first["highlighted_html"]
    assert all(r["document_title"] != "Other firm" for r in body["results"])


def test_search_filters_as_of_and_jurisdiction(viewer_client, searchable):
    url = f"{KB_URL}{searchable.pk}/search/"

    def titles(data):
        return [r["document_title"] for r in viewer_client.post(url, data, format="json").json()["results"]]

    assert titles({"query": "VAT charge", "as_of": "2024-01-01"}) == ["VAT manual"]
    assert titles({"query": "VAT charge", "jurisdiction": "US"}) == ["Old rates"]
    assert titles({"query": "customer reverse charge", "top_k": 1}) == ["VAT manual"]


def test_search_with_api_key_read_scope_and_across_knowledge_bases(searchable, org, other_kb):
    from tests.conftest import client_for
    from tests.factories import APIKeyFactory

    client = client_for(key=APIKeyFactory(organization=org, scopes=[Scope.READ]).plaintext)
    second = KnowledgeBaseFactory(organization=org)
    services.document_create(
        knowledge_base=second, actor=None, title="Audit", text="Reverse engineering audit."
    )
    response = client.post(f"{KB_URL}search/", {"query": "reverse"}, format="json")
    assert response.status_code == 200, response.json()
    assert {r["document_title"] for r in response.json()["results"]} == {"VAT manual", "Audit"}
    only = client.post(
        f"{KB_URL}search/", {"query": "reverse", "knowledge_bases": [second.pk]}, format="json"
    )
    assert [r["document_title"] for r in only.json()["results"]] == ["Audit"]
    foreign = client.post(
        f"{KB_URL}search/", {"query": "reverse", "knowledge_bases": [other_kb.pk]}, format="json"
    )
    assert_error(foreign, 404)
    assert_error(client.post(f"{KB_URL}{other_kb.pk}/search/", {"query": "reverse"}, format="json"), 404)


def test_search_validation_errors(viewer_client, kb):
    url = f"{KB_URL}{kb.pk}/search/"
    assert_error(viewer_client.post(url, {}, format="json"), 400, fields=["query"])
    assert_error(viewer_client.post(url, {"query": "x", "top_k": 0, "as_of": "soon"}, format="json"), 400,
                 fields=["top_k", "as_of"])  # fmt: skip


def test_search_needs_authentication_and_read_rights(api_client, kb, org):
    assert_error(api_client.post(f"{KB_URL}{kb.pk}/search/", {"query": "x"}, format="json"), 401)
    from tests.conftest import client_for
    from tests.factories import APIKeyFactory

    client = client_for(key=APIKeyFactory(organization=org, scopes=[Scope.EXECUTE]).plaintext)
    assert_error(client.post(f"{KB_URL}{kb.pk}/search/", {"query": "x"}, format="json"), 403)
    assert Role.VIEWER  # viewers may search (see test_search_returns_ranked_passages_with_citations)


@pytest.mark.parametrize("metadata", [None, [], "x"])
def test_document_metadata_is_an_object_as_the_schema_says(kb, editor_client, metadata):
    """A document's ``metadata`` is declared a JSON object (it was "any value", and null then a 400:
    schemathesis); anything else is the 400 the schema predicts, an object is taken."""
    document = DocumentFactory(knowledge_base=kb)
    url = f"{documents_url(kb)}{document.pk}/"
    assert_error(editor_client.patch(url, {"metadata": metadata}, format="json"), 400, fields=["metadata"])
    response = editor_client.patch(url, {"metadata": {"source": "BMF"}}, format="json")
    assert response.status_code == 200 and response.json()["metadata"] == {"source": "BMF"}
    schema = editor_client.get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    assert schema["PatchedDocumentRequest"]["properties"]["metadata"]["type"] == "object"
