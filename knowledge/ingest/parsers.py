"""Format detection and parsers: plain text, Markdown, HTML, PDF and DOCX.

Every parser returns the same shape, a list of :class:`Block` (a heading with its level, or a
paragraph) each carrying the page it starts on when the format has pages (PDF). The chunker only
sees blocks, so adding a format means adding one parser here.

``detect`` runs at upload and raises :class:`UnsupportedDocument` (a refusal the user must see at
once: wrong type, empty, encrypted); ``parse`` runs during processing and raises :class:`ParseError`
when a file that looked right cannot be read after all.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum

from knowledge.ingest.errors import ParseError, UnsupportedDocument
from knowledge.ingest.limits import (
    IngestLimits,
    LimitExceeded,
    check_archive,
    check_member_count,
    human_size,
)


class DocumentKind(StrEnum):
    TEXT = "text/plain"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


SUPPORTED_EXTENSIONS = {
    ".txt": DocumentKind.TEXT,
    ".text": DocumentKind.TEXT,
    ".csv": DocumentKind.TEXT,
    ".md": DocumentKind.MARKDOWN,
    ".markdown": DocumentKind.MARKDOWN,
    ".html": DocumentKind.HTML,
    ".htm": DocumentKind.HTML,
    ".xhtml": DocumentKind.HTML,
    ".pdf": DocumentKind.PDF,
    ".docx": DocumentKind.DOCX,
}
SUPPORTED_DESCRIPTION = "plain text (.txt), Markdown (.md), HTML (.html), PDF (.pdf) or Word (.docx)"


@dataclass(frozen=True)
class Block:
    """One unit of structure: a heading (``level`` 1–6) or a paragraph (``level`` 0)."""

    text: str
    level: int = 0
    page: int | None = None

    @property
    def is_heading(self) -> bool:
        return self.level > 0


@dataclass
class ParsedDocument:
    blocks: list[Block] = field(default_factory=list)
    page_count: int | None = None

    @property
    def text_length(self) -> int:
        return sum(len(b.text) for b in self.blocks)


# --- Detection ------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _extension(filename: str) -> str:
    name = (filename or "").lower()
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), then UTF-16 with BOM, then Windows-1252 as a last resort."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return bool(_BINARY_BYTES.search(sample))


def detect(data: bytes, filename: str = "", limits: IngestLimits | None = None) -> DocumentKind:
    """Recognise the format of an upload from its content and name, or refuse it.

    The content decides the type (PDF and Word by their signature, text by having no binary bytes);
    a name's extension, when it has one, must be one of that type's (a PDF named ``.txt`` is
    refused). Raises :class:`UnsupportedDocument` for empty files, unsupported or unrecognisable
    types, an extension that does not match the content, and password-protected PDF or Word files, and :class:`~knowledge.ingest.limits.LimitExceeded` for a
    ZIP archive with more members than ``limits`` allow (the defaults when None), counted before
    its directory is read.
    """
    if not data or not data.strip():
        raise UnsupportedDocument("The file is empty.")
    ext = _extension(filename)
    if data.startswith(b"%PDF-"):
        _check_extension(ext, DocumentKind.PDF)
        _check_pdf_encryption(data)
        return DocumentKind.PDF
    if data.startswith(_OLE_MAGIC):
        if ext in {".docx", ".doc"}:
            raise UnsupportedDocument(
                "This Word file is password-protected (encrypted) or in the old .doc format; "
                "remove the password or save it as .docx and upload it again."
            )
        raise UnsupportedDocument(f"Unsupported file type: upload {SUPPORTED_DESCRIPTION}.")
    if data.startswith(b"PK\x03\x04"):
        check_member_count(data, limits or IngestLimits())
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    _check_extension(ext, DocumentKind.DOCX)
                    return DocumentKind.DOCX
        except zipfile.BadZipFile:
            if ext == ".docx":
                raise UnsupportedDocument("This Word file is damaged: it is not a readable .docx archive.")
        raise UnsupportedDocument(f"Unsupported file type (a ZIP archive): upload {SUPPORTED_DESCRIPTION}.")
    if ext in {".pdf", ".docx"}:
        raise UnsupportedDocument(
            f"The file is named {ext} but its content is not a {'PDF' if ext == '.pdf' else 'Word'} document."
        )
    if _looks_binary(data):
        raise UnsupportedDocument(f"Unsupported file type (binary content): upload {SUPPORTED_DESCRIPTION}.")
    if ext and ext not in SUPPORTED_EXTENSIONS:
        raise UnsupportedDocument(f"Unsupported file type '{ext}': upload {SUPPORTED_DESCRIPTION}.")
    text = decode_text(data)
    if not text.strip():
        raise UnsupportedDocument("The file is empty.")
    if ext in SUPPORTED_EXTENSIONS:
        return SUPPORTED_EXTENSIONS[ext]
    head = text[:1024].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")):
        return DocumentKind.HTML
    return DocumentKind.TEXT


def _check_extension(ext: str, kind: DocumentKind) -> None:
    """Refuse a PDF or Word file whose name says it is something else (``report.txt``,
    ``invoice.exe``, ``macro.docm``): a file is accepted only when its extension is the one its
    content's type has (ASVS 5.0 V5.2.2). A name without an extension, which an API client may
    send, leaves the decision to the content; the stored file is then named after the content."""
    if ext and SUPPORTED_EXTENSIONS.get(ext) != kind:
        expected = ".pdf" if kind == DocumentKind.PDF else ".docx"
        label = "a PDF" if kind == DocumentKind.PDF else "a Word (.docx)"
        raise UnsupportedDocument(
            f"The file is named {ext} but its content is {label} document; "
            f"rename it to {expected} if that is what it is, and upload it again."
        )


def _check_pdf_encryption(data: bytes) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError):
        return  # not readable: processing will report the parse failure on the document
    if encrypted:
        try:
            opened = reader.decrypt("")
        except Exception:  # noqa: BLE001 - unsupported crypto counts as "cannot open"
            opened = 0
        if not opened:
            raise UnsupportedDocument(
                "This PDF is password-protected (encrypted); remove the password and upload it again."
            )


# --- Parsing --------------------------------------------------------------------------------


def parse(data: bytes, kind: DocumentKind | str, limits: IngestLimits | None = None) -> ParsedDocument:
    """Parse ``data`` of the given kind into blocks; raises :class:`ParseError` when unreadable and
    :class:`~knowledge.ingest.limits.LimitExceeded` when over ``limits`` (the defaults when None).

    A .docx is checked as an archive (declared and real unpacked size, compression ratio) before
    the Word parser opens it; a PDF's page count is checked before any page is read, and what its
    pages unpack to and yield is counted page by page.
    """
    kind = DocumentKind(kind)
    limits = limits or IngestLimits()
    if len(data) > limits.max_uncompressed_bytes:
        raise LimitExceeded(
            f"The file is {human_size(len(data))}; the limit is {human_size(limits.max_uncompressed_bytes)}."
        )
    try:
        if kind == DocumentKind.DOCX:
            check_archive(data, limits, what="Word file")
        parsed = parse_pdf(data, limits) if kind == DocumentKind.PDF else _PARSERS[kind](data)
    except (ParseError, MemoryError):
        raise  # MemoryError: over the child's memory limit, reported as such (isolation.py)
    except UnsupportedDocument as exc:
        raise ParseError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - any library failure is a parse failure of this file
        raise ParseError(
            f"The {kind.name} file could not be read: {type(exc).__name__}: {exc}"[:500]
        ) from exc
    if not parsed.blocks:
        raise ParseError("No text could be extracted from the file (a scanned PDF needs OCR first).")
    return parsed


_WS = re.compile(r"[ \t\f\v\u00a0]+")


def _clean(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _paragraphs(text: str, page: int | None = None) -> list[Block]:
    """Blank-line separated paragraphs; lines inside a paragraph are joined with spaces."""
    blocks = []
    for para in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        cleaned = _clean(" ".join(line.strip() for line in para.split("\n")))
        if cleaned:
            blocks.append(Block(cleaned, 0, page))
    return blocks


def parse_text(data: bytes) -> ParsedDocument:
    return ParsedDocument(_paragraphs(decode_text(data)))


_MD_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


def _md_inline(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    return _clean(text)


def parse_markdown(data: bytes) -> ParsedDocument:
    """Headings (ATX ``#`` and setext underlines), paragraphs, list items and fenced code."""
    blocks: list[Block] = []
    lines = decode_text(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    para: list[str] = []
    in_fence = False
    fence: list[str] = []

    def flush() -> None:
        if para:
            text = _md_inline(" ".join(para))
            if text:
                blocks.append(Block(text))
            para.clear()

    for i, line in enumerate(lines):
        if _MD_FENCE.match(line):
            if in_fence:
                code = "\n".join(fence).strip()
                if code:
                    blocks.append(Block(code))
                fence.clear()
            else:
                flush()
            in_fence = not in_fence
            continue
        if in_fence:
            fence.append(line)
            continue
        atx = _MD_ATX.match(line)
        if atx:
            flush()
            title = _md_inline(atx.group(2))
            if title:
                blocks.append(Block(title, len(atx.group(1))))
            continue
        if _MD_SETEXT.match(line) and len(para) == 1 and i > 0 and lines[i - 1].strip():
            title = _md_inline(para.pop())
            if title:
                blocks.append(Block(title, 1 if line.strip().startswith("=") else 2))
            continue
        if not line.strip():
            flush()
            continue
        if _MD_LIST.match(line):
            flush()
            para.append(_MD_LIST.sub("", line, count=1))
            continue
        para.append(line.strip().lstrip(">").strip())
    if in_fence and fence:
        blocks.append(Block("\n".join(fence).strip()))
    flush()
    return ParsedDocument(blocks)


_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HTML_BLOCKS = {
    "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption", "address",
    "div", "section", "article", "main", "aside", "header", "footer", "nav", "ul", "ol", "dl",
    "table", "thead", "tbody", "tfoot", "tr", "form", "fieldset", "details", "summary", "body",
}  # fmt: skip
_HTML_DROP = ["script", "style", "noscript", "template", "head", "svg", "canvas", "iframe", "object"]


def parse_html(data: bytes) -> ParsedDocument:
    """Visible text of an HTML page: headings and block elements, scripts and styles dropped."""
    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    soup = BeautifulSoup(decode_text(data), "lxml")
    for tag in soup(_HTML_DROP):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    blocks: list[Block] = []
    inline: list[str] = []

    def flush() -> None:
        text = _clean(" ".join(inline))
        if text:
            blocks.append(Block(text))
        inline.clear()

    def walk(node) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if str(child).strip():
                    inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name in _HTML_HEADINGS:
                flush()
                text = _clean(child.get_text(" "))
                if text:
                    blocks.append(Block(text, _HTML_HEADINGS[name]))
            elif name == "br":
                inline.append(" ")
            elif name in _HTML_BLOCKS:
                flush()
                walk(child)
                flush()
            else:
                walk(child)

    walk(soup.body or soup)
    flush()
    return ParsedDocument(blocks)


def _pdf_outline_pages(reader) -> list[tuple[int, int, str]]:
    """(page, level, title) for each bookmark of the PDF, in document order."""
    entries: list[tuple[int, int, str]] = []

    def walk(items, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1
            except Exception:  # noqa: BLE001 - a broken bookmark is skipped, not fatal
                continue
            title = _clean(str(getattr(item, "title", "") or ""))
            if title:
                entries.append((page, min(level, 6), title))

    try:
        walk(reader.outline, 1)
    except Exception:  # noqa: BLE001
        return []
    return entries


def parse_pdf(data: bytes, limits: IngestLimits | None = None) -> ParsedDocument:
    """Text of each page with its page number; bookmarks (if any) become headings.

    The page count is checked before any page is read. A PDF's streams are compressed too, so no
    single stream may unpack past the size limit (pypdf's own bounds, lowered to it), and the
    content the pages unpack to and the text they yield are added up page by page and stopped at
    the limit.
    """
    from pypdf import get_configuration
    from pypdf.errors import LimitReachedError

    limits = limits or IngestLimits()
    budget = limits.max_uncompressed_bytes
    current = get_configuration()
    bounded = {
        name: min(budget, getattr(current, name))
        for name in (
            "zlib_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "array_based_stream_maximum_output_length",
            "stream_decoding_work_maximum_length",
        )
    }
    try:
        return _parse_pdf_bounded(data, limits, bounded)
    except LimitReachedError as exc:
        raise LimitExceeded(
            f"The PDF is over a safety limit of the PDF reader ({exc}); what a file may unpack to is "
            f"limited to {human_size(budget)}. Split it into smaller documents or print it to a new PDF."
        ) from exc


def _parse_pdf_bounded(data: bytes, limits: IngestLimits, bounded: dict) -> ParsedDocument:
    from pypdf import PdfReader, apply_configuration

    budget = limits.max_uncompressed_bytes
    with apply_configuration(**bounded):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("This PDF is password-protected (encrypted).")
        pages = reader.pages
        page_count = len(pages)
        if page_count > limits.max_pages:
            raise LimitExceeded(
                f"The PDF has {page_count:,} pages; the limit is {limits.max_pages:,}. "
                "Split it into smaller documents."
            )
        outline = sorted(_pdf_outline_pages(reader), key=lambda e: e[0])
        blocks: list[Block] = []
        unpacked = 0
        o = 0
        for number, page in enumerate(pages, start=1):
            while o < len(outline) and outline[o][0] <= number:
                _, level, title = outline[o]
                blocks.append(Block(title, level, number))
                o += 1
            contents = page.get_contents()
            unpacked += len(contents.get_data()) if contents is not None else 0
            text = page.extract_text() or ""
            unpacked += len(text)
            if unpacked > budget:
                raise LimitExceeded(
                    f"The PDF unpacks to more than {human_size(budget)} (by page {number:,}); "
                    f"the limit is {human_size(budget)}. Split it into smaller documents."
                )
            blocks.extend(_pdf_paragraphs(text, number))
    return ParsedDocument(blocks, page_count=page_count)


def _pdf_paragraphs(text: str, page: int) -> list[Block]:
    """PDF text comes line by line: lines are joined, blank lines separate paragraphs, and words
    hyphenated across a line break are rejoined. Long paragraphs are split later by the chunker."""
    text = re.sub(r"-\n(?=[a-z])", "", text)  # words hyphenated across lines
    return _paragraphs(text, page)


def parse_docx(data: bytes) -> ParsedDocument:
    """Paragraphs and tables in document order; ``Heading N`` and ``Title`` styles become headings."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []

    def heading_level(paragraph: Paragraph) -> int:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style == "Title":
            return 1
        match = re.match(r"Heading (\d)", style)
        if match:
            return max(1, min(int(match.group(1)), 6))
        return 0

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = _clean(item.text)
            if text:
                blocks.append(Block(text, heading_level(item)))
        elif isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    value = _clean(cell.text)
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                if cells:
                    blocks.append(Block(" | ".join(cells)))
    return ParsedDocument(blocks)


_PARSERS = {
    DocumentKind.TEXT: parse_text,
    DocumentKind.MARKDOWN: parse_markdown,
    DocumentKind.HTML: parse_html,
    DocumentKind.PDF: parse_pdf,
    DocumentKind.DOCX: parse_docx,
}
