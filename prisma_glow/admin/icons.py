"""The staff UI's icons: Heroicons (the ``heroicons`` package) drawn as inline SVG.

Emoji need a colour-emoji font that many of the firm's machines do not have (they show as empty
boxes), so the UI draws its icons instead. ``ICONS`` is the product's set, by the name templates use
(``{% icon "thumb-up" %}``, ``prisma_glow.admin.templatetags``); each maps to a Heroicon of the
"mini" style, drawn for 20 px and sized by CSS (``.pg-icon`` in ``admin_ui.css``: 1.25em, the colour
of the text). The SVG has no ``style`` attribute (the CSP allows no inline style).

An icon beside words that say the same is decorative: hidden from assistive technology
(``aria-hidden``). An icon that stands alone gets ``label``, its accessible name (a ``role="img"``
wrapper); where an icon is the only content of a button, the button can carry the name instead
(``aria-label``)."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString
from heroicons.templatetags.heroicons import heroicon_mini

#: The product's icons: our name → the Heroicon it draws.
ICONS: dict[str, str] = {
    "thumb-up": "hand-thumb-up",
    "thumb-down": "hand-thumb-down",
    "check": "check",
    "cross": "x-mark",
    "arrow-up": "arrow-up",
    "arrow-down": "arrow-down",
}


def icon_html(name: str, *, label: str = "", css_class: str = "") -> SafeString:
    """The inline SVG of the product's icon ``name``; decorative unless ``label`` names it.

    ``label`` and ``css_class`` are escaped (they may come from the firm's text). An unknown name is
    a ``ValueError`` naming the icons there are, so a typo fails the page's test, not silently."""
    try:
        heroicon = ICONS[name]
    except KeyError:
        raise ValueError(f"No icon {name!r}; the staff UI's icons are: {', '.join(sorted(ICONS))}.") from None
    # Adding "" makes plain text of a safe string (the form template literals reach simple tags in).
    label, css_class = str(label) + "", str(css_class) + ""
    classes = " ".join(filter(None, ["pg-icon", f"pg-icon-{name}", css_class]))
    # heroicons escapes the attribute values it is given; the SVG it draws is aria-hidden already.
    svg = heroicon_mini(heroicon, size=20, focusable="false", **{"class": classes})
    if not label:
        return svg
    return format_html('<span class="pg-icon-labelled" role="img" aria-label="{}">{}</span>', label, svg)
