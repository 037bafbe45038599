"""ASVS 5.0 level 2, chapter V1 (Encoding and Sanitization), for the staff guide the admin renders from
Markdown (``prisma_glow.guide``, ``/admin/guide/``): markup written in the guide's file — whoever
edited it — is shown as text, and links and images with unsafe schemes are never made.

Every test renders a hostile guide through the real page (a signed-in viewer) and parses the HTML.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from tests.support.guide import write_guide

pytestmark = pytest.mark.django_db

HOSTILE = """\
# Guide <img src=x onerror=alert(1)>

<script>alert("block")</script>

<div hx-post="/admin/tenancy/membership/add/" hx-trigger="load">raw block</div>

Inline <img src=x onerror=alert(2)> and <a href="javascript:alert(3)">a raw link</a>.

## Heading <script>alert(4)</script>

[script link](javascript:alert(5)) [upper case](JAVASCRIPT:alert(6)) [vb](vbscript:msgbox(7))
[file](file:///etc/passwd) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==)
[quoted title](https://example.com/ "a\\" onmouseover=\\"alert(9)")

![pic](javascript:alert(10)) ![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMTEpPg==)
![png](data:image/png;base64,iVBORw0KGgo=)
![alt" onerror="alert(12)](guide/01-dashboard.png)

| a <b>bold</b> | b |
|---|---|
| <iframe src="/admin/"></iframe> | `<script>` |

```html
<script>alert(13)</script>
```
"""

#: Every element markdown-it-py writes for CommonMark plus tables, and the page's own containers.
MARKDOWN_TAGS = {
    "p", "h2", "h3", "h4", "h5", "h6", "a", "img", "strong", "em", "code", "pre", "ul", "ol", "li",
    "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "span",
}  # fmt: skip
SAFE_SCHEMES = ("http://", "https://", "mailto:", "#", "/admin/guide/images/")


@pytest.fixture
def page(viewer_admin_client, tmp_path, settings):
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path, HOSTILE)
    response = viewer_admin_client.get("/admin/guide/")
    assert response.status_code == 200
    return BeautifulSoup(response.content.decode(), "html.parser")


def test_v1_2_1_markup_in_the_guide_is_shown_as_text(page):
    """ASVS 5.0 V1.2.1: output encoding for the HTML context — <script>, <div hx-post>, <img onerror>,
    <iframe> written in the guide (blocks, inline, headings, table cells, the title) are text on the
    page; only elements markdown-it-py writes itself are there, and none carries an event handler."""
    body = page.select_one("article.pg-guide-body")
    assert {tag.name for tag in body.find_all(True)} <= MARKDOWN_TAGS
    for tag in body.find_all(True):
        assert not any(name.startswith(("on", "hx-", "style")) for name in tag.attrs), tag
    text = body.get_text()
    for shown in (
        '<script>alert("block")</script>',
        '<div hx-post="/admin/tenancy/membership/add/" hx-trigger="load">raw block</div>',
        "<img src=x onerror=alert(2)>",
        '<iframe src="/admin/"></iframe>',
        "<script>alert(13)</script>",
    ):
        assert shown in text, shown
    assert page.find("script", string=lambda s: s and "alert" in s) is None
    assert page.find_all("iframe") == [] and page.select("[onerror]") == []
    # The title and the contents show the headings' markup as text too.
    assert page.find("h1").get_text() == "Guide <img src=x onerror=alert(1)>"
    toc = page.select_one("nav.pg-guide-toc")
    assert toc.get_text(" ", strip=True) == "Contents Heading <script>alert(4)</script>"
    assert toc.find("script") is None


def test_v1_2_2_links_and_images_keep_to_safe_schemes(page):
    """ASVS 5.0 V1.2.2: only safe URL schemes — javascript:, vbscript:, file: and data: links and
    images are not made (their Markdown stays text); every href and src on the guide is http(s),
    mailto, a fragment or the guide's own image route; an attribute cannot be broken out of."""
    body = page.select_one("article.pg-guide-body")
    hrefs = [a["href"] for a in body.find_all("a")]
    srcs = [img["src"] for img in body.find_all("img")]
    assert hrefs and all(href.startswith(SAFE_SCHEMES) for href in hrefs), hrefs
    assert srcs == ["/admin/guide/images/01-dashboard.png"], srcs
    for scheme in ("javascript:", "vbscript:", "file:", "data:"):
        assert not any(scheme in value.lower() for value in hrefs + srcs), scheme
    quoted = body.find("a", string="quoted title")
    assert quoted["href"] == "https://example.com/" and quoted["rel"] == ["noopener", "noreferrer"]
    assert quoted["title"] == 'a" onmouseover="alert(9)' and "onmouseover" not in quoted.attrs
    image = body.find("img")
    assert image["alt"] == 'alt" onerror="alert(12)' and "onerror" not in image.attrs
    # The refused images stay Markdown text; a data: PNG (which markdown-it allows) is not the guide's
    # own image either, so it is a note, not an <img>.
    assert "![pic](javascript:alert(10))" in body.get_text()
    assert "![svg](data:image/svg+xml;" in body.get_text()
    notes = [note.get_text() for note in body.select(".pg-guide-missing-image")]
    assert len(notes) == 1 and "data:image/png;base64," in notes[0]
