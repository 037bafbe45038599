"""The staff UI's look in a real browser (issue 18): the product's colours under every state of
Django's theme toggle and of the operating system's colour scheme, and icons (inline SVG) where emoji
showed as empty boxes on machines without an emoji font.

Django's ``theme.js`` keeps the toggle's state in ``localStorage["theme"]`` (``light``, ``dark`` or
``auto``) and copies it to ``<html data-theme>``; with no state it is ``auto``, which follows the
operating system (here ``emulate_media(color_scheme=…)``). Screenshots:
``test-artifacts/screenshots/theme-light.png``, ``theme-dark.png``, ``theme-console-feedback.png``.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from agents.models import Feedback
from tests.e2e.conftest import screenshot
from tests.e2e.data import QUESTION, build_firm

pytestmark = pytest.mark.e2e

#: The product's colours (prisma_glow/static/admin_ui/admin_ui.css) as the browser computes them.
LIGHT = {"header": "rgb(43, 33, 98)", "breadcrumbs": "rgb(91, 63, 214)", "body": "rgb(255, 255, 255)"}
DARK = {"header": "rgb(30, 23, 72)", "breadcrumbs": "rgb(43, 33, 98)", "body": "rgb(18, 18, 18)"}
#: Django's stock header and breadcrumbs (#417690, #79aec8, #264b5d): never shown.
STOCK = {"rgb(65, 118, 144)", "rgb(121, 174, 200)", "rgb(38, 75, 93)"}

COLOURS = """() => {
  const bg = (selector) => getComputedStyle(document.querySelector(selector)).backgroundColor;
  return {
    theme: document.documentElement.dataset.theme,
    header: bg("#header"),
    breadcrumbs: bg(".breadcrumbs"),
    body: bg("body"),
    siteName: getComputedStyle(document.querySelector("#site-name a")).color,
  };
}"""

#: Characters that need an emoji font, as the browser sees the page's text and accessible names.
EMOJI_ON_PAGE = """() => {
  const emoji = /[\\p{Extended_Pictographic}\\uFE0F]/u;
  const labels = [...document.querySelectorAll("[aria-label]")].map((e) => e.getAttribute("aria-label"));
  return [document.body.innerText, ...labels].filter((text) => emoji.test(text));
}"""


def _colours(page, stored: str | None, scheme: str) -> dict:
    """The page's colours with the toggle's state ``stored`` (None: never chosen) and the operating
    system's ``scheme``."""
    page.emulate_media(color_scheme=scheme)
    if stored is None:
        page.evaluate("localStorage.removeItem('theme')")
    else:
        page.evaluate(f"localStorage.setItem('theme', '{stored}')")
    page.reload()
    return page.evaluate(COLOURS)


@pytest.mark.parametrize(
    ("stored", "scheme", "expected"),
    [
        ("light", "light", LIGHT),
        ("light", "dark", LIGHT),  # the toggle on light wins over a dark system (Django's stock teal before)
        ("auto", "light", LIGHT),
        (None, "light", LIGHT),
        ("dark", "light", DARK),
        ("dark", "dark", DARK),
        ("auto", "dark", DARK),
        (None, "dark", DARK),
    ],
)
def test_the_products_colours_in_every_theme(signed_in_page, watcher, stored, scheme, expected):
    """Whatever the toggle says and whatever the system prefers, the header and breadcrumbs wear the
    product's colours (light or dark, as Django's own page background shows the theme applied), never
    Django's stock teal; the site name is not its stock yellow."""
    page = signed_in_page
    page.goto(reverse("admin:agents_agent_changelist"))
    colours = _colours(page, stored, scheme)
    assert colours["theme"] == (stored or "auto")
    assert {k: colours[k] for k in expected} == expected, colours
    assert not {colours["header"], colours["breadcrumbs"]} & STOCK
    assert colours["siteName"] == "rgb(217, 206, 255)"  # not Django's #f5dd5d
    assert watcher.take() == []


def test_the_theme_toggle_switches_between_the_products_light_and_dark(signed_in_page, watcher):
    """Clicking Django's theme toggle (auto on a light system → dark → light) switches between the
    product's dark and light colours, and each is kept across pages."""
    page = signed_in_page
    page.emulate_media(color_scheme="light")
    page.goto(reverse("admin:agents_agent_changelist"))
    expect(page.locator("html")).to_have_attribute("data-theme", "auto")
    assert page.evaluate(COLOURS)["header"] == LIGHT["header"]

    page.get_by_role("button", name="Toggle theme (current theme: auto)").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    colours = page.evaluate(COLOURS)
    assert {k: colours[k] for k in DARK} == DARK, colours
    page.goto(reverse("admin:agents_modelprovider_changelist"))
    assert page.evaluate(COLOURS)["header"] == DARK["header"]
    screenshot(page, "theme-dark")

    page.get_by_role("button", name="Toggle theme (current theme: dark)").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    colours = page.evaluate(COLOURS)
    assert {k: colours[k] for k in LIGHT} == LIGHT, colours
    screenshot(page, "theme-light")
    assert watcher.take() == []


def test_feedback_buttons_show_icons_with_their_names(signed_in_page, org, editor, watcher):
    """An answer's feedback buttons show SVG icons of a visible size in the text's colour, are named
    "Thumbs up: helpful" / "Thumbs down: not helpful", and the feedback given reads in words beside
    its icon; no emoji on the page, in light and in dark."""
    page = signed_in_page
    firm = build_firm(org, editor)
    page.emulate_media(color_scheme="dark")
    page.goto(reverse("admin:console:index") + f"?agent={firm.agent.pk}")
    message = page.get_by_label("Message", exact=True)
    message.fill(QUESTION)
    message.press("Enter")
    turn = page.locator(".console-turn--completed").last
    expect(turn).to_be_visible()

    for name in ("Thumbs up: helpful", "Thumbs down: not helpful"):
        button = turn.get_by_role("button", name=name)
        expect(button).to_be_visible()
        icon = button.locator("svg.pg-icon")
        expect(icon).to_have_count(1)
        expect(icon).to_be_visible()
        box = icon.bounding_box()
        assert box is not None and 12 <= box["width"] <= 24 and 12 <= box["height"] <= 24, box
        fill, text = icon.evaluate(
            "(svg) => [getComputedStyle(svg).fill, getComputedStyle(svg.closest('button')).color]"
        )
        assert fill == text, (fill, text)  # currentColor: readable on the button in either theme
    assert page.evaluate(EMOJI_ON_PAGE) == []
    screenshot(page, "theme-console-feedback")

    turn.get_by_role("button", name="Thumbs up: helpful").click()
    status = turn.get_by_role("status")
    expect(status).to_contain_text("Your feedback: thumbs up, helpful.")
    expect(status.locator("svg.pg-icon-thumb-up")).to_be_visible()
    assert Feedback.objects.get(execution_id=int(turn.get_attribute("data-execution-id"))).rating == 1

    page.emulate_media(color_scheme="light")
    page.reload()
    expect(page.get_by_role("status").first).to_contain_text("thumbs up, helpful")
    assert page.evaluate(EMOJI_ON_PAGE) == []
    assert watcher.take() == []
