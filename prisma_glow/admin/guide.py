"""The staff guide in the admin (issue 18): ``/admin/guide/`` and its images ``/admin/guide/images/<name>``.

Both are for any signed-in member of an organisation (``guide.view``, the viewer's role); the site
mounts them and links the page from every page's header (``prisma_glow.admin_site``). What the page
shows is ``prisma_glow.guide``'s rendering of ``PRISMA_GLOW_GUIDE_PATH``; without that file the page
says how to get it, with status 200 (nothing is wrong with the request).

The images are the files of the guide's image folder with an extension of ``guide.IMAGE_TYPES``,
looked up by ``guide.image_file`` (no ``..``, absolute path, hidden file or symbolic link): anything
else is a 404. They are cacheable by the browser only (``private``), revalidated by ETag and
Last-Modified, typed from their extension with ``nosniff``, and carry a policy of their own that
sandboxes an SVG opened on its own (in an ``<img>``, an SVG runs nothing anyway).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath

from django.http import FileResponse, Http404
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date

from prisma_glow import guide
from prisma_glow.admin.base import admin_require, render_admin_page
from prisma_glow.admin.refusal import refusal_page
from prisma_glow.admin.scoping import get_admin_access

NO_ORGANISATION = (
    "You are not a member of any organisation yet: the guide opens once an owner or admin of your firm "
    "has added you."
)
IMAGE_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
IMAGE_MAX_AGE = 3600


def _refused(request):
    """The refusal page for a signed-in staff user of no organisation, else None (then the policy)."""
    access = get_admin_access(request)
    if access.role is None and not access.is_superuser:
        return refusal_page(request, NO_ORGANISATION)
    admin_require(request, "guide.view")
    return None


def guide_page(request):
    """The guide, rendered, with its table of contents; or a page saying it is not installed."""
    refused = _refused(request)
    if refused is not None:
        return refused
    # The image route is guide/images/<name> (prisma_glow.admin_site).
    rendered = guide.load_guide(image_url=reverse("admin:guide") + "images/")
    return render_admin_page(
        request,
        "admin/pg/guide.html",
        {"guide": rendered},
        title=rendered.title if rendered is not None else guide.DEFAULT_TITLE,
    )


def guide_image(request, name: str):
    """One image of the guide's folder, or 404."""
    refused = _refused(request)
    if refused is not None:
        return refused
    path = guide.image_file(name)
    if path is None:
        raise Http404("The guide has no such image.")
    try:
        handle = guide.open_image(path)
    except OSError:
        raise Http404("The guide has no such image.")
    stat = os.fstat(handle.fileno())
    etag = '"' + hashlib.sha256(f"{name}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:32] + '"'
    last_modified = int(stat.st_mtime)
    not_modified = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if not_modified is not None:
        handle.close()
        response = not_modified
    else:
        # Inline, named after the file (RFC 6266 encoding is Django's), never the request's whole path.
        response = FileResponse(
            handle,
            content_type=guide.IMAGE_TYPES[path.suffix.lower()],
            filename=PurePosixPath(name).name,
        )
        response["Content-Length"] = str(stat.st_size)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = f"private, max-age={IMAGE_MAX_AGE}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = IMAGE_POLICY
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
