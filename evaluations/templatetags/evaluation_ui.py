"""Template filters of the evaluations pages."""

from __future__ import annotations

from django import template

from evaluations.pages.forms import percent as share_percent

register = template.Library()


@register.filter
def percent(share) -> str:
    """A share (0–1) as the percentage the threshold form takes and its messages say (``0.875`` →
    ``87.5``), so that a page never shows a threshold rounded another way; ``—`` for none."""
    return "—" if share is None or share == "" else share_percent(share)
