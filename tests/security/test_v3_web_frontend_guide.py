"""ASVS 5.0 level 2, chapter V3 (Web Frontend Security), for the staff guide's page and images
(``/admin/guide/``, ``prisma_glow.admin.guide``)."""

from __future__ import annotations

import pytest

from tests.support.guide import write_guide

pytestmark = pytest.mark.django_db


@pytest.fixture
def guide_file(tmp_path, settings):
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(tmp_path)
    return settings.PRISMA_GLOW_GUIDE_PATH


def test_v3_2_1_an_svg_opened_on_its_own_is_sandboxed(viewer_admin_client, guide_file):
    """ASVS 5.0 V3.2.1: a resource requested directly is not rendered in the wrong context — an SVG
    image opened as a page gets a policy of its own (``sandbox``, nothing loaded, no script), so a
    script in it could not run with the admin's origin."""
    response = viewer_admin_client.get("/admin/guide/images/02-console.svg")
    assert response.status_code == 200
    policy = [part.strip() for part in response["Content-Security-Policy"].split(";")]
    assert "sandbox" in policy and "default-src 'none'" in policy
    assert not any("script-src" in part for part in policy)
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"


def test_v3_4_4_the_page_and_its_images_are_nosniff(viewer_admin_client, guide_file):
    """ASVS 5.0 V3.4.4: ``X-Content-Type-Options: nosniff`` on the page and on every image, each with
    the content type of its extension."""
    page = viewer_admin_client.get("/admin/guide/")
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Content-Type"].startswith("text/html")
    for name, content_type in (("01-dashboard.png", "image/png"), ("02-console.svg", "image/svg+xml")):
        response = viewer_admin_client.get(f"/admin/guide/images/{name}")
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["Content-Type"] == content_type, name


def test_v3_4_3_the_page_passes_the_strict_policy(viewer_admin_client, guide_file):
    """ASVS 5.0 V3.4.3: the page keeps the site's CSP (scripts and styles from the site only) and
    writes no inline style or script, aligned table columns included (a class, not a style)."""
    guide_file.write_text(guide_file.read_text() + "\n| x |\n|--:|\n| 1 |\n")
    response = viewer_admin_client.get("/admin/guide/")
    html = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "style-src 'self'" in response["Content-Security-Policy"]
    assert ' style="' not in html and "<style" not in html and "<script>" not in html
    assert 'class="pg-align-right"' in html
