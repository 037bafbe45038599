"""The staff guide (``docs/guide.md``) as the admin serves it at ``/admin/guide/`` (issue 18).

The guide is a Markdown file (``PRISMA_GLOW_GUIDE_PATH``) with its screenshots in the folder beside it
that bears its name (``docs/guide.md`` → ``docs/guide/``), written for GitHub as much as for the
admin. ``render_guide`` turns it into HTML with markdown-it-py's CommonMark preset plus tables, raw
HTML off: every ``<tag>`` in the file is shown as text, every attribute and text escaped, and links
whose scheme is not safe (``javascript:``, ``vbscript:``, ``file:``, ``data:`` but images) are left as
text by markdown-it's own link validation. On the parsed tokens, before rendering:

- headings get ids (GitHub's slugs, prefixed ``guide-`` so that none can clash with an id of the
  admin's own layout, such as ``content``) and the headings of levels 2 and 3 make the table of
  contents; links to ``#a-heading`` follow the prefix;
- an image whose path, relative to the guide, is inside the image folder, with an extension of
  ``IMAGE_TYPES``, and present, points to the route that serves it (``image_file`` resolves the name
  again there); any other image (missing, elsewhere, another site's — the CSP would block it anyway)
  is replaced by a note with its text, listed in ``missing_images``; every image has alt text;
- links to another site get ``rel="noopener noreferrer"``; a table column's alignment is a class,
  not a ``style`` attribute (the CSP allows none).

The first level-1 heading is the page's title, not repeated in the body. A rendering is kept per
process while the file's size and modification time, and the image folder's, stay the same.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.token import Token

#: What the image route serves: extension → content type. Nothing else leaves the image folder.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}
ID_PREFIX = "guide-"
DEFAULT_TITLE = "Staff guide"


@dataclass(frozen=True)
class Heading:
    """An entry of the table of contents: a level-2 heading with its level-3 headings."""

    id: str
    text: str
    children: list[Heading] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedGuide:
    html: SafeString
    title: str
    toc: list[Heading]
    #: The image folder's files the guide shows (names relative to the folder), in order of appearance.
    images: list[str]
    #: Images the guide references that are not shown (missing, outside the folder, not an image type).
    missing_images: list[str]


def guide_path() -> Path:
    return Path(settings.PRISMA_GLOW_GUIDE_PATH)


def image_folder(path: Path | None = None) -> Path:
    """The guide's image folder: beside the guide, named after it (``docs/guide.md`` → ``docs/guide``)."""
    path = path if path is not None else guide_path()
    return path.with_suffix("")


def image_file(name: str, folder: Path | None = None) -> Path | None:
    """The file ``name`` (relative, ``/``-separated) of the image folder, or None.

    None unless every part of the name is a plain name (no ``..``, ``.``, empty part, leading dot,
    backslash or NUL: an absolute path has an empty first part), the extension is one of
    ``IMAGE_TYPES``, and the file is a regular file whose real path is exactly the folder's joined
    with the name — a symbolic link anywhere below the folder, even to a file inside it, is refused.
    """
    folder = folder if folder is not None else image_folder()
    if not name or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    if PurePosixPath(name).suffix.lower() not in IMAGE_TYPES:
        return None
    try:
        base = folder.resolve(strict=True)
        candidate = base.joinpath(*parts)
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if real != candidate or not real.is_file():
        return None
    return real


def open_image(path: Path):
    """Open an image ``image_file`` returned, refusing a symbolic link put there since (O_NOFOLLOW)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    return os.fdopen(fd, "rb")


def load_guide(image_url: str) -> RenderedGuide | None:
    """The guide rendered, with images served under ``image_url`` (a URL ending in ``/``), or None
    when the file is not there (or cannot be read as UTF-8 text)."""
    path = guide_path()
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    try:
        # Screenshots added or removed (make guide) change the folder's time: which images exist is
        # part of the rendering.
        folder_mtime_ns = image_folder(path).stat().st_mtime_ns
    except OSError:
        folder_mtime_ns = 0
    try:
        return _render_file(str(path), stat.st_mtime_ns, stat.st_size, folder_mtime_ns, image_url)
    except (OSError, UnicodeDecodeError):
        return None


@lru_cache(maxsize=8)
def _render_file(path: str, mtime_ns: int, size: int, folder_mtime_ns: int, image_url: str) -> RenderedGuide:
    """One rendering per version of the file and of its image folder (times and size are the key)."""
    text = Path(path).read_text(encoding="utf-8")
    return render_guide(text, image_url=image_url, folder=image_folder(Path(path)))


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def render_guide(text: str, *, image_url: str, folder: Path) -> RenderedGuide:
    """Render the guide's Markdown ``text``; images of ``folder`` are served under ``image_url``."""
    md = _markdown()
    tokens = md.parse(text)
    title, tokens = _take_title(tokens)
    toc = _number_headings(tokens)
    images: list[str] = []
    missing: list[str] = []
    for token in tokens:
        if token.type in ("th_open", "td_open") and token.attrGet("style"):
            _align_by_class(token)
        if token.type == "inline" and token.children:
            token.children = _rewrite_inline(token.children, image_url, folder, images, missing)
    html = md.renderer.render(tokens, md.options, {})
    # Marked safe because markdown-it-py wrote every tag of it: with raw HTML off (html=False) the
    # file's own markup is escaped as text, and every text and attribute value — the ids, URLs and
    # alt texts set above included — goes through its escapeHtml (tests/platform/test_guide.py and
    # tests/security/test_v3_web_frontend_guide.py feed it hostile Markdown).
    return RenderedGuide(
        html=mark_safe(html),
        title=title or DEFAULT_TITLE,
        toc=toc,
        images=images,
        missing_images=missing,
    )


def _align_by_class(token: Token) -> None:
    """A table column's alignment as a class (``pg-align-right``): the CSP allows no style attribute."""
    style = str(token.attrGet("style") or "")
    token.attrs.pop("style", None)
    match = re.fullmatch(r"text-align:(left|center|right)", style)
    if match:
        token.attrSet("class", f"pg-align-{match.group(1)}")


# --- Headings --------------------------------------------------------------------------------------
def _inline_text(token: Token) -> str:
    """The plain text of an inline token (what a reader sees: no markup, code spans kept)."""
    children = token.children or []
    return "".join(c.content for c in children if c.type in ("text", "code_inline")).strip()


def _take_title(tokens: list[Token]) -> tuple[str, list[Token]]:
    """The first level-1 heading's text, and the tokens without it (the page shows it as its title)."""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            return _inline_text(tokens[index + 1]), tokens[:index] + tokens[index + 3 :]
    return "", tokens


def slugify(text: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    slug = re.sub(r"[^\w\- ]", "", text, flags=re.UNICODE).replace(" ", "-")
    return slug or "section"


def _number_headings(tokens: list[Token]) -> list[Heading]:
    """Give every heading its id (unique, as GitHub does: ``name``, ``name-1``…) and return the
    table of contents: the level-2 headings with their level-3 headings."""
    seen: dict[str, int] = {}
    toc: list[Heading] = []
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        text = _inline_text(tokens[index + 1])
        slug = slugify(text)
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        token.attrSet("id", ID_PREFIX + slug)
        if token.tag == "h2":
            toc.append(Heading(id=ID_PREFIX + slug, text=text or "Section"))
        elif token.tag == "h3" and toc:
            toc[-1].children.append(Heading(id=ID_PREFIX + slug, text=text or "Section"))
    return toc


# --- Links and images ------------------------------------------------------------------------------
def _folder_name(url: str, folder: Path) -> str | None:
    """The name inside the image folder that a URL relative to the guide points to, or None
    (``guide/01.png`` → ``01.png`` when the folder is ``docs/guide``)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or parts.query or not parts.path or parts.path.startswith("/"):
        return None
    path = [p for p in unquote(parts.path).split("/") if p != "."]
    if not path or path[0] != folder.name or len(path) < 2:
        return None
    return "/".join(path[1:])


def _rewrite_inline(
    children: list[Token], image_url: str, folder: Path, images: list[str], missing: list[str]
) -> list[Token]:
    out: list[Token] = []
    for child in children:
        if child.type == "link_open":
            _rewrite_link(child, image_url, folder)
        if child.type != "image":
            out.append(child)
            continue
        src = str(child.attrGet("src") or "")
        alt = "".join(c.content for c in child.children or [] if c.type in ("text", "code_inline")).strip()
        name = _folder_name(src, folder)
        if name is not None and image_file(name, folder) is not None:
            if not alt:
                alt = f"Screenshot: {_describe(name)}"
                child.children = [Token("text", "", 0, content=alt)]
            child.attrSet("src", image_url + quote(name))
            child.attrSet("loading", "lazy")
            child.attrSet("class", "pg-guide-image")
            images.append(name)
            out.append(child)
        else:
            missing.append(unquote(src))
            note = f"Image not available: {alt or unquote(src)} ({unquote(src)})"
            out.extend(
                [
                    Token("span_open", "span", 1, attrs={"class": "pg-guide-missing-image"}),
                    Token("text", "", 0, content=note),
                    Token("span_close", "span", -1),
                ]
            )
    return out


def _describe(name: str) -> str:
    """A file name as words, for an image the guide gave no text (``01-new-agent.png`` → "new agent")."""
    stem = PurePosixPath(name).stem
    words = re.sub(r"^[\d_ -]+", "", stem).replace("-", " ").replace("_", " ").strip()
    return words or stem


def _rewrite_link(token: Token, image_url: str, folder: Path) -> None:
    href = str(token.attrGet("href") or "")
    if href.startswith("#") and len(href) > 1:
        token.attrSet("href", "#" + ID_PREFIX + href[1:])
        return
    name = _folder_name(href, folder)
    if name is not None and image_file(name, folder) is not None:
        token.attrSet("href", image_url + quote(name))
        return
    if urlsplit(href).scheme in ("http", "https"):
        token.attrSet("rel", "noopener noreferrer")
