"""Template filters of the staff UI (``{% load admin_ui %}``)."""

from __future__ import annotations

import json
import re

from django import template
from django.utils.crypto import salted_hmac
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from prisma_glow.admin.icons import icon_html
from prisma_glow.display import format_duration_ms, format_money

register = template.Library()


@register.filter
def intcomma_pg(value) -> str:
    """12345 → "12,345" (no locale dependence)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def money(value, currency=None) -> str:
    """``{{ cost|money:currency }}``: the one way money is shown (``prisma_glow.display.format_money``);
    ``currency`` is in every page's context (``prisma_glow.context_processors.currency``)."""
    return format_money(value, currency or None)


@register.filter
def duration_ms(value) -> str:
    """``{{ latency_ms|duration_ms }}``: the one way a duration is shown
    (``prisma_glow.display.format_duration_ms``): "850 ms", "30.1 s"."""
    return format_duration_ms(value)


@register.simple_tag
def icon(name: str, label: str = "", css_class: str = "") -> SafeString:
    """``{% icon "thumb-up" %}``: one of the product's icons as inline SVG (``prisma_glow.admin.icons``),
    decorative; ``label="Passed"`` names an icon that stands alone."""
    return icon_html(name, label=label, css_class=css_class)


@register.filter
def pretty_json(value) -> str:
    """Indented JSON for <pre> blocks (values that are not JSON are shown as they are)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def highlight_spans(text: str, spans) -> SafeString:
    """``text`` with each ``(start, end, label)`` span wrapped in ``<mark>`` (overlaps merged).

    Every part, text and label alike, goes through ``format_html``: the result is markup only
    where this function wrote it, whatever ``text`` contains."""
    cleaned = sorted(
        (max(0, int(s[0])), min(len(text), int(s[1])), str(s[2]) if len(s) > 2 else "")
        for s in spans or []
        if s is not None and len(s) >= 2 and int(s[1]) > int(s[0])
    )
    parts: list[SafeString] = []
    cursor = 0
    for start, end, label in cleaned:
        if start < cursor:
            start = cursor
        if start >= end:
            continue
        parts.append(escape(text[cursor:start]))
        if label:
            parts.append(format_html('<mark class="pg-mark" title="{}">{}</mark>', label, text[start:end]))
        else:
            parts.append(format_html('<mark class="pg-mark">{}</mark>', text[start:end]))
        cursor = end
    parts.append(escape(text[cursor:]))
    return format_html_join("", "{}", ((part,) for part in parts))


def highlight_terms(text: str, query: str) -> SafeString:
    """Escape ``text`` and mark every occurrence of the query's words (three letters or more)."""
    words = sorted({w for w in re.findall(r"\w{3,}", query or "", flags=re.UNICODE)}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), flags=re.IGNORECASE)
    spans = [(m.start(), m.end(), "") for m in pattern.finditer(text)]
    return highlight_spans(text, spans)


@register.simple_tag
def highlight(text, query):
    return highlight_terms(text or "", query or "")


# --- Where an htmx request may come from ------------------------------------------------------
# admin_ui.js sends an htmx request (with the CSRF header) only for an element that carries
# ``data-pg-htmx`` with this page's token and is not inside user content (``hx-disable``). The token
# is a keyed hash of the session: stored content (a description, a document, an answer) is written
# before the page it appears on is rendered and cannot know it, so markup that slipped into a page
# still could not make the signed-in user's browser send a request.


def htmx_token(request) -> str:
    """The session's htmx token ("" without a session: nothing is trusted then). The session key,
    and so the token, stays the same for the session's life with the database (the default) or
    cache session engines."""
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None) if session is not None else None
    if not key:
        return ""
    return salted_hmac("prisma_glow.admin.htmx-origin", key, algorithm="sha256").hexdigest()[:32]


@register.simple_tag(takes_context=True)
def pg_htmx_token(context) -> str:
    """The token for the page's ``<meta name="pg-htmx">``."""
    return htmx_token(context.get("request"))


@register.simple_tag(takes_context=True)
def pg_htmx(context) -> SafeString:
    """``data-pg-htmx="<token>"``: marks an element of the product's own templates that issues htmx
    requests (every element with ``hx-get``/``hx-post``… carries it; a test checks)."""
    return format_html('data-pg-htmx="{}"', htmx_token(context.get("request")))
