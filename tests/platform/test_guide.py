"""The staff guide in the admin (issue 18): ``/admin/guide/`` renders ``PRISMA_GLOW_GUIDE_PATH`` with
its table of contents, serves the images of the guide's folder, says so when the guide is missing,
and opens to every member of an organisation. Each test writes its own small guide into a temporary
directory (tests.support.guide); the last ones read the real docs/guide.md when the checkout has it.

The hostile Markdown and the path tricks are in tests/security/test_v3_web_frontend_guide.py and
tests/security/test_v5_files_guide.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.conf import settings as django_settings
from django.test import Client

from prisma_glow import guide
from tests.factories import MembershipFactory, UserFactory
from tests.support.admin import login
from tests.support.guide import GUIDE, png, write_guide

pytestmark = pytest.mark.django_db

PAGE = "/admin/guide/"
IMAGE = "/admin/guide/images/01-dashboard.png"


@pytest.fixture
def guide_file(tmp_path, settings) -> Path:
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path)
    return settings.PRISMA_GLOW_GUIDE_PATH


def soup_of(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.content.decode(), "html.parser")


# --- What the page shows ------------------------------------------------------------------------
def test_the_guide_renders_its_headings_tables_code_and_images(viewer_admin_client, guide_file):
    """A viewer reads the guide: its first heading is the page's title (once), headings have ids, the
    table and the code block are there (the code's markup as text), images point to the image route
    with their alt text."""
    soup = soup_of(viewer_admin_client.get(PAGE))
    assert soup.title.get_text().startswith("Prisma Glow for the firm's staff")
    assert [h.get_text() for h in soup.find_all("h1")] == ["Prisma Glow for the firm's staff"]
    body = soup.select_one("article.pg-guide-body")
    assert [(h.name, h["id"]) for h in body.find_all(["h2", "h3"])] == [
        ("h2", "guide-building-an-agent"),
        ("h3", "guide-the-wizards-steps"),
        ("h2", "guide-testing-it"),
        ("h2", "guide-releasing-it"),
        ("h2", "guide-building-an-agent-1"),
    ]
    table = body.find("table")
    assert [th.get_text() for th in table.find_all("th")] == ["Step", "What you give"]
    assert [td.get_text() for td in table.find_all("td")][:2] == ["Basics", "A name and a description"]
    code = body.select_one("pre code.language-python")
    assert code.get_text() == 'print("<b>not bold</b>")\n' and code.find("b") is None
    images = body.find_all("img")
    assert [(img["src"], img["alt"]) for img in images] == [
        ("/admin/guide/images/01-dashboard.png", "The dashboard after signing in"),
        ("/admin/guide/images/02-console.svg", "Screenshot: console"),  # no alt in the Markdown
    ]
    assert all("pg-guide-image" in img["class"] for img in images)
    # A link to a heading follows the ids' prefix.
    assert body.find("a", string="releasing")["href"] == "#guide-releasing-it"


def test_the_table_of_contents_links_every_section(viewer_admin_client, guide_file):
    """Levels 2 and 3 make the contents, nested; each entry's anchor is a heading of the page."""
    soup = soup_of(viewer_admin_client.get(PAGE))
    toc = soup.select_one("nav.pg-guide-toc")
    top = [li.find("a") for li in toc.select(":scope > ol > li")]
    assert [(a.get_text(), a["href"]) for a in top] == [
        ("Building an agent", "#guide-building-an-agent"),
        ("Testing it", "#guide-testing-it"),
        ("Releasing it", "#guide-releasing-it"),
        ("Building an agent", "#guide-building-an-agent-1"),
    ]
    nested = toc.select(":scope > ol > li:first-child ol a")
    assert [(a.get_text(), a["href"]) for a in nested] == [("The wizard's steps", "#guide-the-wizards-steps")]
    ids = {tag["id"] for tag in soup.find_all(id=True)}
    assert {a["href"][1:] for a in toc.find_all("a")} <= ids


def test_the_page_uses_the_products_styles_and_no_inline_style_or_script(viewer_admin_client, guide_file):
    """guide.css beside admin_ui.css; the guide is inside an hx-disable container; nothing inline."""
    response = viewer_admin_client.get(PAGE)
    html = response.content.decode()
    assert "admin_ui/guide.css" in html and "admin_ui/admin_ui.css" in html
    assert ' style="' not in html and "<style" not in html
    assert "default-src 'self'" in response["Content-Security-Policy"]
    soup = soup_of(response)
    assert soup.select_one("#content-main[hx-disable] article.pg-guide-body") is not None
    css = (Path(django_settings.BASE_DIR) / "prisma_glow/static/admin_ui/guide.css").read_text()
    assert "max-width: 100%" in css


def test_aligned_table_columns_use_classes_not_style_attributes(viewer_admin_client, tmp_path, settings):
    """Markdown's column alignment would be a style attribute, which the CSP refuses: a class instead."""
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path, "| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n")
    soup = soup_of(viewer_admin_client.get(PAGE))
    cells = soup.select("article td")
    assert [cell.get("class") for cell in cells] == [
        ["pg-align-left"],
        ["pg-align-center"],
        ["pg-align-right"],
    ]
    assert not soup.select("article [style]")


def test_a_missing_image_is_a_note_not_a_broken_image(viewer_admin_client, tmp_path, settings):
    """An image the folder lacks, or outside it, or on another site: a visible note with its text,
    never an <img> the browser would fail to load (or the CSP block)."""
    text = (
        "# Guide\n\n![The wizard](guide/09-missing.png)\n\n![Logo](https://example.com/logo.png)\n\n"
        "![Notes](guide/notes.txt)\n"
    )
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path, text)
    (tmp_path / "guide" / "notes.txt").write_text("not an image")
    soup = soup_of(viewer_admin_client.get(PAGE))
    body = soup.select_one("article.pg-guide-body")
    assert body.find_all("img") == []
    notes = [span.get_text() for span in body.select(".pg-guide-missing-image")]
    assert notes == [
        "Image not available: The wizard (guide/09-missing.png)",
        "Image not available: Logo (https://example.com/logo.png)",
        "Image not available: Notes (guide/notes.txt)",
    ]
    rendered = guide.load_guide(image_url="/admin/guide/images/")
    assert rendered.missing_images == [
        "guide/09-missing.png",
        "https://example.com/logo.png",
        "guide/notes.txt",
    ]


def test_an_edited_guide_is_shown_at_the_next_visit(viewer_admin_client, guide_file):
    """The rendering is kept per process only while the file stays the same."""
    assert "A release is approved" in viewer_admin_client.get(PAGE).content.decode()
    guide_file.write_text(GUIDE.replace("A release is approved", "A release is signed off"), encoding="utf-8")
    stat = guide_file.stat()
    os.utime(guide_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    html = viewer_admin_client.get(PAGE).content.decode()
    assert "A release is signed off" in html and "A release is approved" not in html


def test_a_screenshot_added_later_is_shown_at_the_next_visit(viewer_admin_client, tmp_path, settings):
    """`make guide` writes the screenshots after the text: the note becomes the image."""
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path, "# Guide\n\n![Later](guide/03-later.png)\n")
    assert "Image not available: Later" in viewer_admin_client.get(PAGE).content.decode()
    (tmp_path / "guide" / "03-later.png").write_bytes(png())
    folder = (tmp_path / "guide").stat()
    os.utime(tmp_path / "guide", ns=(folder.st_atime_ns, folder.st_mtime_ns + 1_000_000_000))
    soup = soup_of(viewer_admin_client.get(PAGE))
    assert soup.select_one("article img")["src"] == "/admin/guide/images/03-later.png"


def test_the_page_takes_few_queries(viewer_admin_client, guide_file, django_assert_max_num_queries):
    """The session, the user and the memberships; the guide itself is a file."""
    viewer_admin_client.get(PAGE)
    with django_assert_max_num_queries(5):
        assert viewer_admin_client.get(PAGE).status_code == 200


# --- No guide ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["absent", "a folder", "not UTF-8"])
def test_without_a_readable_guide_the_page_says_it_is_not_installed(
    viewer_admin_client, tmp_path, settings, case
):
    """No file (an installed wheel carries none), a folder, or bytes that are not text: a page saying
    so and what to do, not an error."""
    path = tmp_path / "guide.md"
    if case == "a folder":
        path.mkdir()
    elif case == "not UTF-8":
        path.write_bytes(b"# Guide\n\n\xff\xfe broken")
    settings.PRISMA_GLOW_GUIDE_PATH = path
    response = viewer_admin_client.get(PAGE)
    soup = soup_of(response)
    missing = soup.select_one(".pg-guide-missing")
    assert "The guide isn't installed" in missing.get_text()
    assert "make guide" in missing.get_text() and "PRISMA_GLOW_GUIDE_PATH" in missing.get_text()
    assert str(tmp_path) not in response.content.decode()  # the server's paths stay on the server
    assert viewer_admin_client.get(IMAGE).status_code == 404


def test_the_default_guide_is_docs_guide_md_of_the_checkout():
    assert (
        Path(django_settings.PRISMA_GLOW_GUIDE_PATH) == Path(django_settings.BASE_DIR) / "docs" / "guide.md"
    )
    assert guide.image_folder() == Path(django_settings.BASE_DIR) / "docs" / "guide"


# --- Images --------------------------------------------------------------------------------------
def test_images_are_served_typed_cacheable_and_revalidated(viewer_admin_client, guide_file):
    """A PNG and an SVG of the folder: their bytes, their content type, nosniff, cacheable by the
    browser only, and a 304 when the browser's copy is current."""
    response = viewer_admin_client.get(IMAGE)
    assert response.status_code == 200
    assert (
        b"".join(response.streaming_content)
        == (guide_file.parent / "guide" / "01-dashboard.png").read_bytes()
    )
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["ETag"] and response["Last-Modified"]
    again = viewer_admin_client.get(IMAGE, headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304 and again["Cache-Control"] == "private, max-age=3600"
    svg = viewer_admin_client.get("/admin/guide/images/02-console.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert "sandbox" in svg["Content-Security-Policy"]


def test_a_changed_image_gets_a_new_etag(viewer_admin_client, guide_file):
    first = viewer_admin_client.get(IMAGE)["ETag"]
    (guide_file.parent / "guide" / "01-dashboard.png").write_bytes(png(10, 10))
    second = viewer_admin_client.get(IMAGE, headers={"If-None-Match": first})
    assert second.status_code == 200 and second["ETag"] != first


def test_images_in_a_subfolder_are_served(viewer_admin_client, guide_file):
    (guide_file.parent / "guide" / "wizard").mkdir()
    (guide_file.parent / "guide" / "wizard" / "step.png").write_bytes(png())
    assert viewer_admin_client.get("/admin/guide/images/wizard/step.png").status_code == 200


# --- Who may read it -----------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "editor", "admin", "owner"])
def test_every_member_reads_the_guide_and_its_images(org, guide_file, role):
    user = UserFactory(username=f"guide-{role}")
    MembershipFactory(user=user, organization=org, role=role)
    client = login(user)
    assert client.get(PAGE).status_code == 200
    assert client.get(IMAGE).status_code == 200


def test_anonymous_and_non_staff_users_are_sent_to_the_login(non_staff_client, guide_file):
    for client in (Client(), non_staff_client):
        for url in (PAGE, IMAGE):
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/admin/login/?next="), url


def test_a_staff_user_of_no_organisation_is_told_why(guide_file):
    """As on the rest of the admin, a staff account with no membership sees nothing: the refusal page
    says why, and the header offers no guide."""
    client = login(UserFactory(username="lonely", is_staff=True))
    response = client.get(PAGE)
    assert response.status_code == 403
    assert "not a member of any organisation" in response.content.decode()
    assert client.get(IMAGE).status_code == 403
    assert 'href="/admin/guide/"' not in client.get("/admin/").content.decode()


def test_a_superuser_reads_the_guide(guide_file):
    client = login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get(PAGE).status_code == 200


def test_every_admin_page_links_the_guide_in_its_header(viewer_admin_client, world):
    """The header's user links carry "Guide", on the dashboard and on every other page."""
    for url in ("/admin/", "/admin/agents/agent/", world.pages()["agent-detail"], PAGE):
        soup = soup_of(viewer_admin_client.get(url))
        link = soup.select_one("#user-tools a[href='/admin/guide/']")
        assert link is not None and link.get_text() == "Guide", url


# --- The real guide ------------------------------------------------------------------------------
REAL_GUIDE = Path(django_settings.BASE_DIR) / "docs" / "guide.md"


def test_the_real_guide_renders_and_every_image_it_shows_exists(viewer_admin_client, settings):
    """docs/guide.md renders with contents, and every image it references is a file of docs/guide/
    that the image route serves."""
    settings.PRISMA_GLOW_GUIDE_PATH = REAL_GUIDE
    rendered = guide.load_guide(image_url="/admin/guide/images/")
    assert rendered is not None and rendered.toc
    assert rendered.missing_images == []
    for name in rendered.images:
        assert (REAL_GUIDE.parent / "guide" / name).is_file(), name
    soup = soup_of(viewer_admin_client.get(PAGE))
    assert soup.select("article.pg-guide-body h2")
    for name in dict.fromkeys(rendered.images):
        response = viewer_admin_client.get(f"/admin/guide/images/{name}")
        assert response.status_code == 200, name
