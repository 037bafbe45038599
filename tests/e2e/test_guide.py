"""The staff guide in a real browser (issue 18): opened from the header's link, its contents lead to
its sections, its screenshots load (a PNG and an SVG), markup in the guide stays text — with no
console error and no CSP violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.support.guide import GUIDE, write_guide

pytestmark = pytest.mark.e2e

HOSTILE_TAIL = """
## Markup stays text

<img src=x onerror="document.title='pwned'"> and <script>document.title='pwned'</script>

| Left | Right |
|:-----|------:|
| a    | 1     |
"""


def test_the_guide_opens_from_the_header_and_shows_its_screenshots(
    signed_in_page, live_server, tmp_path, settings, watcher
):
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path, GUIDE + HOSTILE_TAIL)
    page = signed_in_page
    page.goto(live_server.url + "/admin/")
    page.locator("#user-tools").get_by_role("link", name="Guide", exact=True).click()
    expect(page).to_have_url(live_server.url + "/admin/guide/")
    expect(page.locator("h1")).to_have_text("Prisma Glow for the firm's staff")

    toc = page.get_by_role("navigation", name="Contents")
    expect(toc).to_be_visible()
    toc.get_by_role("link", name="Releasing it").click()
    expect(page).to_have_url(live_server.url + "/admin/guide/#guide-releasing-it")
    expect(page.locator("#guide-releasing-it")).to_be_in_viewport()

    for alt in ("The dashboard after signing in", "Screenshot: console"):
        image = page.get_by_alt_text(alt, exact=True)
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    dashboard = page.get_by_alt_text("The dashboard after signing in", exact=True)
    assert dashboard.evaluate("img => img.naturalWidth") == 320
    # max-width: 100%: a screenshot never overflows the text's column.
    width = dashboard.evaluate("img => img.getBoundingClientRect().width")
    column = page.locator("article.pg-guide-body").evaluate("el => el.getBoundingClientRect().width")
    assert 0 < width <= column

    body = page.locator("article.pg-guide-body")
    expect(body).to_contain_text("<script>document.title='pwned'</script>")
    assert body.locator("script, img[src='x']").count() == 0
    assert page.title() != "pwned"
    expect(body.locator("td.pg-align-right")).to_have_text("1")
    assert body.locator("td.pg-align-right").evaluate("td => getComputedStyle(td).textAlign") == "right"

    page.locator("#guide-building-an-agent").scroll_into_view_if_needed()
    screenshot(page, "guide")
    assert watcher.take() == []


def test_without_the_guide_the_page_says_so(signed_in_page, live_server, tmp_path, settings, watcher):
    settings.PRISMA_GLOW_GUIDE_PATH = tmp_path / "absent.md"
    page = signed_in_page
    page.goto(live_server.url + "/admin/guide/")
    expect(page.get_by_role("heading", name="The guide isn't installed")).to_be_visible()
    screenshot(page, "guide-missing")
    assert watcher.take() == []
