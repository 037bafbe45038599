"""Parsers, format detection and chunking, on real small files written by the tests."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from knowledge.ingest import (
    Block,
    DocumentKind,
    ParseError,
    UnsupportedDocument,
    chunk_blocks,
    detect,
    parse,
)
from knowledge.ingest.chunker import HEADING_SEPARATOR
from tests.knowledge.conftest import make_docx, make_pdf

# --- Parsers --------------------------------------------------------------------------------


def test_plain_text_is_split_into_paragraphs():
    """Blank lines separate paragraphs; lines inside one are joined."""
    parsed = parse(b"First line\ncontinues here.\n\nSecond paragraph.\n", DocumentKind.TEXT)
    assert [b.text for b in parsed.blocks] == ["First line continues here.", "Second paragraph."]
    assert all(not b.is_heading for b in parsed.blocks)


def test_markdown_headings_and_inline_markup():
    """ATX and setext headings become headings; emphasis and link syntax are removed."""
    source = (
        b"# VAT manual\n\nIntro with **bold** and a [link](https://example.com).\n\n"
        b"Reverse charge\n--------------\n\n- first item\n- second item\n\n```\ncode line\n```\n"
    )
    blocks = parse(source, DocumentKind.MARKDOWN).blocks
    assert blocks[0] == Block("VAT manual", 1)
    assert blocks[1].text == "Intro with bold and a link."
    assert blocks[2] == Block("Reverse charge", 2)
    assert [b.text for b in blocks[3:]] == ["first item", "second item", "code line"]


def test_html_keeps_visible_text_and_drops_scripts_and_styles():
    """Headings and block elements are kept; script, style and comments never reach the text."""
    html = (
        b"<!doctype html><html><head><title>T</title><style>p{color:red}</style></head><body>"
        b"<h1>Audit guide</h1><p>Sampling <b>rules</b> apply.</p><script>steal()</script>"
        b"<!-- hidden note --><ul><li>One</li><li>Two</li></ul><h2>Materiality</h2><div>Five percent</div>"
        b"</body></html>"
    )
    blocks = parse(html, DocumentKind.HTML).blocks
    texts = [b.text for b in blocks]
    assert blocks[0] == Block("Audit guide", 1)
    assert "Sampling rules apply." in texts
    assert Block("Materiality", 2) in blocks
    assert "Five percent" in texts and "One" in texts
    joined = " ".join(texts)
    assert "steal" not in joined and "color" not in joined and "hidden note" not in joined


def test_pdf_pages_are_numbered_and_bookmarks_become_headings():
    """Each paragraph carries the page it is on; PDF bookmarks become headings."""
    data = make_pdf(
        ["Introduction to VAT for consultants.", "Reverse charge applies to B2B services.", "Invoices."],
        bookmarks=[(2, "Reverse charge")],
    )
    parsed = parse(data, DocumentKind.PDF)
    assert parsed.page_count == 3
    paragraphs = [b for b in parsed.blocks if not b.is_heading]
    assert [(b.page, b.text) for b in paragraphs][:2] == [
        (1, "Introduction to VAT for consultants."),
        (2, "Reverse charge applies to B2B services."),
    ]
    assert Block("Reverse charge", 1, 2) in parsed.blocks


def test_docx_headings_paragraphs_and_tables():
    """Heading styles become headings with their level; table rows become paragraphs."""
    data = make_docx(
        [("h1", "Memo on transfer pricing"), ("p", "Arm's length principle."), ("h2", "Documentation")],
        table=[["Country", "Threshold"], ["DE", "EUR 6m"]],
    )
    blocks = parse(data, DocumentKind.DOCX).blocks
    assert blocks[0] == Block("Memo on transfer pricing", 1)
    assert blocks[1] == Block("Arm's length principle.", 0)
    assert blocks[2] == Block("Documentation", 2)
    assert blocks[3:] == [Block("Country | Threshold"), Block("DE | EUR 6m")]


def test_corrupt_pdf_raises_parse_error():
    """A file that claims to be a PDF but is not readable fails parsing with a reason."""
    with pytest.raises(ParseError, match="could not be read|No text"):
        parse(b"%PDF-1.7\nthis is not really a pdf\n%%EOF", DocumentKind.PDF)


def test_pdf_without_text_raises_parse_error():
    """A PDF whose pages carry no text (a scan) cannot be indexed."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(ParseError, match="No text"):
        parse(bytes(pdf.output()), DocumentKind.PDF)


# --- Detection (the errors users see at upload) -----------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (b"hello", "notes.txt", DocumentKind.TEXT),
        (b"# Title", "notes.md", DocumentKind.MARKDOWN),
        (b"<html><body>x</body></html>", "page.html", DocumentKind.HTML),
        (b"<!DOCTYPE html><p>x</p>", "", DocumentKind.HTML),
        (b"plain words", "", DocumentKind.TEXT),
    ],
)
def test_detect_text_formats(data, name, kind):
    assert detect(data, name) == kind


def test_detect_pdf_and_docx_by_content():
    """The content decides the type; a name without an extension (an API client's) is accepted."""
    assert detect(make_pdf(["x"]), "manual.PDF") == DocumentKind.PDF
    assert detect(make_pdf(["x"]), "") == DocumentKind.PDF
    assert detect(make_docx([("p", "x")]), "memo.docx") == DocumentKind.DOCX
    assert detect(make_docx([("p", "x")]), "memo") == DocumentKind.DOCX


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda: make_pdf(["x"]), "whatever.bin", "named .bin but its content is a PDF document"),
        (lambda: make_pdf(["x"]), "notes.txt", "named .txt but its content is a PDF document"),
        (lambda: make_docx([("p", "x")]), "memo.docm", "named .docm but its content is a Word (.docx)"),
        (lambda: make_docx([("p", "x")]), "memo.pdf", "named .pdf but its content is a Word (.docx)"),
    ],
)
def test_detect_refuses_a_pdf_or_word_file_named_as_another_type(make, name, message):
    with pytest.raises(UnsupportedDocument, match=re.escape(message)):
        detect(make(), name)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.txt", "empty"),
        (b"  \n\t ", "blank.txt", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "scan.png", "Unsupported file type"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "tool.exe", "Unsupported file type"),
        (b"just text", "sheet.xlsx", "Unsupported file type '.xlsx'"),
        (b"not a pdf at all", "manual.pdf", "not a PDF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "memo.docx", "password-protected"),
    ],
)
def test_detect_refuses_with_a_clear_message(data, name, message):
    with pytest.raises(UnsupportedDocument, match=message):
        detect(data, name)


def test_detect_refuses_zip_that_is_not_a_word_document():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.txt", "x")
    with pytest.raises(UnsupportedDocument, match="ZIP archive"):
        detect(buffer.getvalue(), "archive.docx")


def test_detect_refuses_encrypted_pdf():
    data = make_pdf(["Confidential client list."], password="secret")
    with pytest.raises(UnsupportedDocument, match="password-protected"):
        detect(data, "locked.pdf")


# --- Chunking -------------------------------------------------------------------------------


def test_chunks_follow_sections_and_keep_heading_paths():
    """A heading starts a new chunk; the heading path lists the enclosing headings."""
    blocks = [
        Block("VAT manual", 1),
        Block("Scope of the manual."),
        Block("Reverse charge", 2),
        Block("The customer accounts for the VAT."),
        Block("Invoices", 1),
        Block("An invoice must show both VAT numbers."),
    ]
    chunks = chunk_blocks(blocks, size=500, overlap=50)
    assert [(c.heading_path, c.text) for c in chunks] == [
        ("VAT manual", "Scope of the manual."),
        (f"VAT manual{HEADING_SEPARATOR}Reverse charge", "The customer accounts for the VAT."),
        ("Invoices", "An invoice must show both VAT numbers."),
    ]


def test_long_sections_are_split_with_overlap_and_size_respected():
    """Chunks stay within the size; consecutive chunks of a section share the overlap."""
    sentences = [f"Sentence number {i} explains a rule of the manual." for i in range(60)]
    chunks = chunk_blocks([Block("Rules", 1), Block(" ".join(sentences), 0, 7)], size=300, overlap=60)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(c.page == 7 and c.heading_path == "Rules" for c in chunks)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        carried = current.text[:30]
        assert carried in previous.text  # the start of each chunk repeats the end of the previous
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)


def test_paragraphs_are_packed_and_pages_recorded():
    blocks = [Block(f"Paragraph {i} on page {i // 3 + 1}.", 0, i // 3 + 1) for i in range(9)]
    chunks = chunk_blocks(blocks, size=80, overlap=0)
    assert chunks[0].page == 1
    assert chunks[-1].page == 3
    assert "\n\n".join(c.text for c in chunks).count("Paragraph") == 9


def test_unbroken_text_is_hard_split():
    chunks = chunk_blocks([Block("x" * 1000)], size=200, overlap=0)
    assert [len(c.text) for c in chunks] == [200] * 5
