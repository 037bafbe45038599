"""ASVS 5.0 level 2, chapter V5 (File Handling), for the one place Prisma Glow serves files from disk by
a name in the URL: the staff guide's images, ``/admin/guide/images/<name>`` (``prisma_glow.guide.
image_file``). The name is checked part by part and the file's real path must be exactly the guide's
image folder joined with it: ``..``, absolute paths, hidden files, other types and symbolic links are
404, whatever file they would reach.
"""

from __future__ import annotations

import pytest

from tests.support.guide import png, write_guide

pytestmark = pytest.mark.django_db

IMAGES = "/admin/guide/images/"


@pytest.fixture
def folder(tmp_path, settings):
    """The guide in ``tmp_path/docs``; beside it, outside the image folder, files worth stealing."""
    docs = tmp_path / "docs"
    docs.mkdir()
    settings.PRISMA_GLOW_GUIDE_PATH = write_guide(docs)
    (docs / "secret.png").write_bytes(png(7, 7))
    (tmp_path / "secret.png").write_bytes(png(9, 9))
    (tmp_path / "passwords.txt").write_text("root:hunter2")
    return docs / "guide"


@pytest.mark.parametrize(
    "name",
    [
        "../secret.png",
        "../../secret.png",
        "..%2Fsecret.png",
        "%2e%2e/secret.png",
        "01-dashboard.png/../../secret.png",
        "./01-dashboard.png",
        "..\\secret.png",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "/" + "tmp/secret.png",
        "../guide.md",
        "../../passwords.txt",
        "01-dashboard.png%00.txt",
    ],
)
def test_v5_3_2_no_name_reaches_outside_the_image_folder(viewer_admin_client, folder, name):
    """ASVS 5.0 V5.3.2: a file path built from a name in the URL is validated strictly — relative
    (``..``, encoded or not, backslashes), absolute and NUL-carrying names answer 404."""
    response = viewer_admin_client.get(IMAGES + name)
    assert response.status_code == 404, (name, response.status_code)
    assert b"root:hunter2" not in response.content and b"PNG" not in response.content


def test_v5_3_2_symbolic_links_are_refused_wherever_they_point(viewer_admin_client, folder, tmp_path):
    """ASVS 5.0 V5.3.2: a link in the folder to a file outside it, to another image inside it, or a
    linked sub-folder: all 404 (the real path must be the folder's own)."""
    (folder / "leak.png").symlink_to(tmp_path / "secret.png")
    (folder / "alias.png").symlink_to(folder / "01-dashboard.png")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.png").write_bytes(png())
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for name in ("leak.png", "alias.png", "linked/x.png"):
        assert viewer_admin_client.get(IMAGES + name).status_code == 404, name
    assert viewer_admin_client.get(IMAGES + "01-dashboard.png").status_code == 200


def test_v5_3_2_only_image_files_of_the_folder_are_served(viewer_admin_client, folder):
    """ASVS 5.0 V5.3.2: other types (even with an image-like name), hidden files and folders: 404."""
    (folder / "notes.txt").write_text("internal")
    (folder / "page.html").write_text("<script>alert(1)</script>")
    (folder / "shot.png.html").write_text("<script>alert(1)</script>")
    (folder / ".hidden.png").write_bytes(png())
    (folder / "folder.png").mkdir()
    (folder / "UPPER.PNG").write_bytes(png())
    for name in ("notes.txt", "page.html", "shot.png.html", ".hidden.png", "folder.png", "guide.md", ""):
        assert viewer_admin_client.get(IMAGES + name).status_code == 404, name
    assert viewer_admin_client.get(IMAGES + "UPPER.PNG")["Content-Type"] == "image/png"


def test_v5_3_2_the_guide_shows_no_image_from_outside_its_folder(viewer_admin_client, folder, settings):
    """ASVS 5.0 V5.3.2: Markdown pointing an image outside the folder (``..``, absolute, a link) gets
    a note, never a URL of the image route."""
    (folder / "leak.png").symlink_to(folder.parent / "secret.png")
    guide_md = folder.parent / "guide.md"
    guide_md.write_text(
        "# Guide\n\n![a](guide/../secret.png) ![b](/etc/passwd.png) ![c](guide/leak.png) ![d](secret.png)\n"
        "![e](guide/%2e%2e/secret.png)\n"
    )
    html = viewer_admin_client.get("/admin/guide/").content.decode()
    assert "<img" not in html.split('class="pg-guide-body"', 1)[1]
    assert html.count("pg-guide-missing-image") == 5


def test_v5_4_1_an_image_is_served_inline_under_its_own_file_name(viewer_admin_client, folder):
    """ASVS 5.0 V5.4.1: the response names the file (Content-Disposition, inline), never the path
    asked for; its type comes from the extension (allow-list), not from the content or the client."""
    (folder / "wizard").mkdir()
    (folder / "wizard" / "step 1.png").write_bytes(png())
    response = viewer_admin_client.get(IMAGES + "wizard/step%201.png")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'inline; filename="step 1.png"'
    assert response["Content-Type"] == "image/png"
