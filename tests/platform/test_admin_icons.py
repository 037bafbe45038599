"""The staff UI draws its icons (Heroicons, ``prisma_glow/admin/icons.py``) instead of emoji, which show
as empty boxes on machines without an emoji font (issue 18).

- ``{% icon %}`` draws each of the product's icons as inline SVG: sized and coloured by CSS, no inline
  style (the CSP refuses it), hidden from assistive technology unless given a name.
- No template, static script or style sheet, or Python module the project ships holds an emoji; nor
  does any staff page as rendered, nor the API's schema (the ratings are said in words).

The browser shows the icons with their size and names in ``tests/e2e/test_theme.py``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import regex
from bs4 import BeautifulSoup
from django.apps import apps
from django.conf import settings
from django.template import Context, Template

from agents.models import Rating
from prisma_glow.admin.icons import ICONS, icon_html
from tests.factories import ConversationFactory, ExecutionFactory
from tests.support.admin import login

#: Pictographs that need an emoji font: Unicode's Extended_Pictographic characters (which include the
#: symbol and dingbat blocks' ✓ ✗ ✖ ⚠), anything asked to show as emoji (U+FE0F), less the three
#: that every text font has (© ® ™). Arrows, dashes and currency signs are text.
EMOJI = regex.compile(
    r"(?![\u00a9\u00ae\u2122])[\p{Extended_Pictographic}\p{Emoji_Presentation}\u2600-\u27bf\ufe0f]"
)
#: Escapes a file can spell a character with: HTML (&#10006; &#x2716;) is decoded by ``html.unescape``;
#: these are Python/JavaScript (\u2716, \U0001F44D, \u{1F44D}) and CSS (\2716).
ESCAPE = re.compile(r"\\u\{([0-9a-fA-F]{1,6})\}|\\U([0-9a-fA-F]{8})|\\u([0-9a-fA-F]{4})|\\([0-9a-fA-F]{4,6})")
BASE = Path(settings.BASE_DIR).resolve()


def emoji_in(text: str) -> list[str]:
    """The emoji in ``text``, written as characters or as HTML, Python, JavaScript or CSS escapes."""
    decoded = ESCAPE.sub(lambda m: chr(int(next(g for g in m.groups() if g), 16)), html.unescape(text))
    return EMOJI.findall(decoded)


def shipped_files() -> list[Path]:
    """Every template, static file and Python module of the project's own apps and folders (not the
    installed packages). Migrations are left out: they are history (``agents/0001`` once stored the
    ratings' labels as emoji; ``0015`` replaced them) and never shown."""
    roots = {Path(d).resolve() for conf in settings.TEMPLATES for d in conf.get("DIRS", [])}
    roots |= {Path(d).resolve() for d in getattr(settings, "STATICFILES_DIRS", [])}
    for app in apps.get_app_configs():
        path = Path(app.path).resolve()
        if path.is_relative_to(BASE) and ".venv" not in path.parts:
            roots.add(path)
    files = set()
    for root in roots:
        for path in root.rglob("*"):
            if (
                path.is_file()
                and path.suffix in {".html", ".txt", ".py", ".js", ".css", ".svg"}
                and "migrations" not in path.parts
                and "__pycache__" not in path.parts
            ):
                files.add(path)
    return sorted(files)


# --- The icon tag --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ICONS))
def test_each_icon_is_inline_svg_sized_by_css_and_decorative(name):
    """Each product icon: one <svg> with its classes, a size for when CSS is missing, the text's colour,
    hidden from screen readers and keyboard focus, and no inline style (the CSP forbids it)."""
    rendered = Template(f'{{% load admin_ui %}}{{% icon "{name}" %}}').render(Context())
    svg = BeautifulSoup(rendered, "html.parser").find_all("svg")
    assert len(svg) == 1
    attrs = svg[0].attrs
    assert attrs["class"] == ["pg-icon", f"pg-icon-{name}"]
    assert (attrs["width"], attrs["height"], attrs["viewbox"]) == ("20", "20", "0 0 20 20")
    assert attrs["fill"] == "currentColor"
    assert (attrs["aria-hidden"], attrs["focusable"]) == ("true", "false")
    assert "style" not in rendered and "<script" not in rendered
    assert not [a for tag in svg[0].find_all(True) for a in tag.attrs if a.startswith("on")]
    assert svg[0].find("path") is not None


def test_a_named_icon_is_an_image_with_that_name():
    """``label=`` gives an icon that stands alone its accessible name (a role="img" wrapper); the SVG
    inside stays hidden so the name is read once."""
    rendered = Template('{% load admin_ui %}{% icon "check" label="Passed" css_class="pg-big" %}').render(
        Context()
    )
    wrapper = BeautifulSoup(rendered, "html.parser").find("span")
    assert (wrapper["role"], wrapper["aria-label"]) == ("img", "Passed")
    assert wrapper.svg["aria-hidden"] == "true"
    assert wrapper.svg["class"] == ["pg-icon", "pg-icon-check", "pg-big"]


def test_an_unknown_icon_names_the_icons_there_are():
    """A typo is an error naming the product's icons, not a blank space on the page."""
    with pytest.raises(ValueError, match=r"No icon 'thumbs-up'.*thumb-down, thumb-up"):
        icon_html("thumbs-up")


def test_ratings_are_said_in_words():
    """The ratings' labels (the API's schema, the feedback list, audit names) are words."""
    assert dict(Rating.choices) == {-1: "Thumbs down", 1: "Thumbs up"}


# --- No emoji anywhere ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Your feedback: 👎 not helpful", ["👎"]),
        ("✓ passed ✗ failed", ["✓", "✗"]),
        ("&#10006; Clear all filters", ["✖"]),
        ("&#x1F44D;", ["👍"]),
        (r'label = "\U0001F44D"', ["👍"]),
        (r"el.textContent = '\u{1F44E}' + '\u2716';", ["👎", "✖"]),
        (r'.x::before { content: "\2714"; }', ["✔"]),
        ("⚠️ warning", ["⚠", "\ufe0f"]),
        ("v1 → v2, €190.00 — © 2026 Prisma Glow™ ↑ ↓ · …", []),
        (r"\d{4} \w+ \\u00e9", []),
    ],
)
def test_the_scan_finds_emoji_however_they_are_written(text, found):
    """The scan below would see an emoji written as a character or an escape, and leaves text alone."""
    assert emoji_in(text) == found


def test_nothing_the_project_ships_holds_an_emoji():
    """Templates, static scripts and styles, and Python modules (UI strings, API descriptions and
    docstrings, which the API schema shows) of the project's apps: no emoji."""
    files = shipped_files()
    names = {p.relative_to(BASE).as_posix() for p in files}
    # The scan reaches the places the emoji were: templates of the apps and of the project, static files.
    assert {
        "agents/templates/agents/console/_feedback.html",
        "prisma_glow/templates/admin/change_list.html",
        "evaluations/templates/admin/evaluations/evalrun/page.html",
        "agents/static/console/console.js",
        "prisma_glow/static/admin_ui/admin_ui.css",
        "agents/models.py",
    } <= names
    found = {}
    for path in files:
        hits = emoji_in(path.read_text(encoding="utf-8"))
        if hits:
            found[path.relative_to(BASE).as_posix()] = hits
    assert found == {}


@pytest.mark.django_db
def test_no_staff_page_shows_an_emoji(owner, world):
    """Every staff page with rows of each kind (the dashboard, the lists and objects, the feedback on
    an execution, the console with an answer's feedback form and with feedback given): no emoji in the
    HTML as served."""
    client = login(owner)
    given = ExecutionFactory(agent=world.agent, actor_user=owner, source="console")
    conversation = ConversationFactory(agent=world.agent, organization=world.org)
    open_turn = ExecutionFactory(agent=world.agent, actor_user=owner, source="console")
    for turn, execution in enumerate((given, open_turn), start=1):
        execution.conversation, execution.turn = conversation, turn
        execution.save(update_fields=["conversation", "turn"])
    session = client.session
    session["console_conversations"] = {str(world.agent.pk): conversation.pk}
    session.save()
    assert client.post(f"/admin/console/executions/{given.pk}/feedback/", {"rating": "1"}).status_code == 302

    urls = {"dashboard": "/admin/", "console": f"/admin/console/?agent={world.agent.pk}", **world.pages()}
    found = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        hits = emoji_in(response.content.decode())
        if hits:
            found[name] = hits
    assert found == {}
    console = client.get(urls["console"]).content.decode()
    assert "thumbs up, helpful" in console and "pg-icon-thumb-up" in console  # feedback given
    assert 'aria-label="Thumbs down: not helpful"' in console  # the open turn's form
    execution_page = client.get(world.pages()["execution"]).content.decode()
    assert "pg-icon-thumb-down" in execution_page and "Thumbs down" in execution_page


@pytest.mark.django_db
def test_the_api_schema_says_the_ratings_in_words(owner):
    """The OpenAPI schema (descriptions, enums, examples) holds no emoji; the feedback rating is
    described as "Thumbs up" / "Thumbs down"."""
    response = login(owner).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    text = response.content.decode()
    assert emoji_in(text) == []
    assert "Thumbs down" in text and "thumbs up (`rating: 1`)" in text
