"""Knowledge tests: tasks run immediately and uploaded files go to a temporary directory."""

from __future__ import annotations

import io

import pytest

from tests.factories import KnowledgeBaseFactory


@pytest.fixture(autouse=True)
def _knowledge_settings(settings, tmp_path):
    """Run ``django.tasks`` tasks at once (django.tasks resets its backends on ``setting_changed``)
    and keep uploaded files out of the shared media directory."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


@pytest.fixture
def kb(org):
    return KnowledgeBaseFactory(organization=org, name="EU VAT guidance", chunk_size=600, chunk_overlap=80)


@pytest.fixture
def other_kb(other_org):
    return KnowledgeBaseFactory(organization=other_org, name="Other firm guidance")


def make_pdf(
    pages: list[str], *, bookmarks: list[tuple[int, str]] = (), password: str | None = None
) -> bytes:
    """A real PDF with one page per entry of ``pages`` (fpdf2), optionally with bookmarks and a password."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    marks = dict(bookmarks)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        if number in marks:
            pdf.start_section(marks[number])
        pdf.multi_cell(0, 6, text)
    if password:
        from fpdf.enums import EncryptionMethod

        pdf.set_encryption(
            owner_password="owner-" + password,
            user_password=password,
            encryption_method=EncryptionMethod.AES_128,
        )
    return bytes(pdf.output())


def make_docx(parts: list[tuple[str, str]], *, table: list[list[str]] | None = None) -> bytes:
    """A real DOCX (python-docx); ``parts`` are (style, text) with style "h1", "h2" or "p"."""
    import docx

    document = docx.Document()
    for style, text in parts:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1:]))
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
