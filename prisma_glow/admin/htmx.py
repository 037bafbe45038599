"""HTMX helpers: the same view answers a fragment to HTMX and the whole page to everyone else."""

from __future__ import annotations

from django.template.response import TemplateResponse


def is_htmx(request) -> bool:
    """True for requests htmx sent (``HX-Request``), except boosted navigations, which want pages."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


def htmx_partial(request, template: str, context: dict, *, partial: str, status: int = 200):
    """Render ``template#partial`` (a ``{% partialdef %}``) for HTMX requests, ``template`` otherwise."""
    name = f"{template}#{partial}" if is_htmx(request) else template
    return TemplateResponse(request, name, context, status=status)
