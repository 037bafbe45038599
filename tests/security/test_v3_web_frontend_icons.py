"""The staff UI's icons (issue 18, ``prisma_glow/admin/icons.py``): inline SVG whose names and classes
are text, never markup, and which need nothing the strict CSP refuses (no inline style, no script)."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.template import Context, Template

from tests.factories import AgentToolFactory, ToolFactory
from tests.support.admin import login

pytestmark = pytest.mark.django_db

NAME = '"><img src=x onerror=alert(1)><b class="x'


def test_v3_2_2_an_icons_name_and_classes_are_inserted_as_text():
    """ASVS 5.0 V3.2.2: text is inserted as text — an icon's accessible name and extra classes taken
    from the firm's text land escaped inside their attributes: no element or attribute is added."""
    rendered = Template('{% load admin_ui %}{% icon "check" label=name css_class=name %}').render(
        Context({"name": NAME})
    )
    soup = BeautifulSoup(rendered, "html.parser")
    assert [tag.name for tag in soup.find_all(True)] == ["span", "svg", "path"]
    assert soup.span["aria-label"] == NAME
    assert " ".join(soup.svg["class"]) == f"pg-icon pg-icon-check {NAME}"
    assert "<img" not in rendered and "onerror=alert(1)>" not in rendered
    assert not [a for tag in soup.find_all(True) for a in tag.attrs if a.startswith("on") or a == "style"]


def test_v3_2_2_icon_buttons_are_named_with_the_firms_text_as_text(org, owner):
    """ASVS 5.0 V3.2.2: the assignments page's move buttons, an icon each, are named after the tool
    (``aria-label``); a tool named with markup stays text there, and the page keeps the strict CSP
    (style-src 'self', no inline style on any icon)."""
    tool = ToolFactory(organization=org, name=NAME)
    assignment = AgentToolFactory(agent__organization=org, tool=tool)
    response = login(owner).get(f"/admin/agents/agent/{assignment.agent.pk}/assignments/tools/")
    assert response.status_code == 200
    soup = BeautifulSoup(response.content.decode(), "html.parser")
    moves = {button["value"]: button for button in soup.select(".pg-move button")}
    assert set(moves) == {"up", "down"}
    for direction, button in moves.items():
        assert button["aria-label"] == f"Move {NAME} {direction}"
        assert button.get_text(strip=True) == ""  # the icon is the button's only content
        assert button.select_one(f"svg.pg-icon-arrow-{direction}")["aria-hidden"] == "true"
    assert not soup.find("img", src="x")
    assert not [svg for svg in soup.find_all("svg") if svg.has_attr("style")]
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self';" in policy + ";" and "unsafe-inline" not in policy
