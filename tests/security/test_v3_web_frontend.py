"""ASVS 5.0 chapter V3, web front-end security: the session and CSRF cookies' names and attributes."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"
COOKIE_SETTINGS = (
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_DOMAIN",
    "CSRF_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "CSRF_COOKIE_PATH",
)


def _settings_in(env: dict[str, str], tmp_path) -> dict:
    """The cookie settings as a fresh process reads them from ``env`` (nothing else from this one's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {COOKIE_SETTINGS!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "prisma_glow.settings",
            "PRISMA_GLOW_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_cookies_are_host_prefixed_secure_and_lax(tmp_path):
    """ASVS 5.0 V3.3.1, V3.3.2, V3.3.3, V3.3.4: with DJANGO_DEBUG=0 the session and CSRF cookies are
    named ``__Host-…`` (Secure, Path=/, no Domain), SameSite=Lax, and the session cookie is HttpOnly."""
    values = _settings_in(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "example.com",
        },
        tmp_path,
    )
    assert values == {
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_DOMAIN": None,
        "CSRF_COOKIE_DOMAIN": None,
        "SESSION_COOKIE_PATH": "/",
        "CSRF_COOKIE_PATH": "/",
    }


def test_development_cookies_keep_working_on_plain_http(tmp_path):
    """Development (http://localhost, where a browser refuses a Secure ``__Host-`` cookie) keeps
    Django's names and no Secure flag, so ``make run`` opens as before."""
    values = _settings_in({"DJANGO_DEBUG": "1"}, tmp_path)
    assert values["SESSION_COOKIE_NAME"] == "sessionid" and values["CSRF_COOKIE_NAME"] == "csrftoken"
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.fixture
def production_cookies(settings):
    settings.SESSION_COOKIE_NAME = "__Host-sessionid"
    settings.CSRF_COOKIE_NAME = "__Host-csrftoken"
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True


def _attributes(response, name: str) -> dict:
    morsel = response.cookies[name]
    return {key: morsel[key] for key in ("path", "domain", "secure", "httponly", "samesite")}


def test_host_cookies_carry_the_admin_login_and_its_csrf_check(owner, production_cookies):
    """ASVS 5.0 V3.3.1, V3.3.3: under the production names the admin's login form passes its CSRF check
    and sets a ``__Host-`` session cookie a browser accepts (Secure, Path=/, no Domain, SameSite=Lax,
    HttpOnly); the CSRF cookie alike (not HttpOnly: the staff UI's script reads it)."""
    client = Client(enforce_csrf_checks=True, secure=True)
    page = client.get("/admin/login/")
    assert _attributes(page, "__Host-csrftoken") == {
        "path": "/",
        "domain": "",
        "secure": True,
        "httponly": "",
        "samesite": "Lax",
    }
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    refused = client.post("/admin/login/", {"username": owner.username, "password": PASSWORD})
    assert refused.status_code == 403  # no token in the form: the CSRF check is on
    response = client.post(
        "/admin/login/",
        {"username": owner.username, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
    )
    assert response.status_code == 302, response.content[:300]
    assert _attributes(response, "__Host-sessionid") == {
        "path": "/",
        "domain": "",
        "secure": True,
        "httponly": True,
        "samesite": "Lax",
    }
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert client.get("/admin/").status_code == 200


def test_host_csrf_cookie_works_for_api_writes_with_the_header(owner, production_cookies):
    """ASVS 5.0 V3.5.1: an API write from the signed-in staff UI sends the ``__Host-csrftoken`` cookie's
    value as X-CSRFToken (as admin_ui.js does) and is accepted; without it, refused."""
    client = Client(enforce_csrf_checks=True, secure=True)
    client.force_login(owner)
    assert client.get("/admin/").status_code == 200  # its logout form sets the CSRF cookie
    token = client.cookies["__Host-csrftoken"].value
    body = json.dumps({"name": "Renamed"})
    refused = client.patch("/api/v1/organization/", body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    accepted = client.patch(
        "/api/v1/organization/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert accepted.status_code == 200, accepted.content


def test_staff_ui_script_reads_both_csrf_cookie_names():
    """ASVS 5.0 V3.5.1: admin_ui.js, which puts the CSRF token on htmx requests, reads it from the
    development and the production (``__Host-``) cookie alike, and not from a look-alike name."""
    script = (ROOT / "prisma_glow/static/admin_ui/admin_ui.js").read_text()
    pattern = re.search(r"document\.cookie\.match\(/(.+?)/\)", script).group(1)
    for jar, token in (
        ("theme=dark; csrftoken=abc123", "abc123"),
        ("theme=dark; __Host-csrftoken=def456; __Host-sessionid=zzz", "def456"),
        ("xcsrftoken=nope; __Host-csrftoken=ghi789", "ghi789"),
    ):
        assert re.search(pattern, jar).group(1) == token
    assert re.search(pattern, "evilcsrftoken=nope") is None
