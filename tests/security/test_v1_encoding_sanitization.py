"""ASVS 5.0 V1 (encoding and sanitization), HTTP tool URL templates, under a fuzzer (hypothesis): a
template that is accepted is a well-formed http(s) URL once its placeholders are filled, whatever the
arguments, and the HTTP client reads the same host and port as the outbound guard judged (no parser
differential to slip a request past the SSRF guard). A malformed one (``http://[::1/x``,
``http://[::1]x/``, spaces, a backslash) is refused with a 400 naming ``url_template``."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import assert_error
from tools.http_executor import render_url, template_fields, url_template_problem
from tools.models import Tool

# Pieces that make parsers disagree: brackets, colons, @, dots, hyphens, spaces, backslashes, %, IDNA.
AUTHORITY_PIECES = st.sampled_from(
    ["[", "]", ":", "::1", "2001:db8::1", "@", ".", "-", " ", "\\", "%41", "80", "rates", "example",
     "com", "127.0.0.1", "é", "xn--", "_", "v1.fe", "\t", "{{", "}}"]
)  # fmt: skip
PATH_PIECES = st.sampled_from(["/", "x", "{a}", "{b}", "?q=", "#", "&", "%20", " ", "[", "]", "\\"])
TEMPLATES = st.builds(
    lambda scheme, authority, path: scheme + "".join(authority) + "".join(path),
    st.sampled_from(["http://", "https://", "HTTP://"]),
    st.lists(AUTHORITY_PIECES, min_size=1, max_size=6),
    st.lists(PATH_PIECES, max_size=6),
)
ARGUMENTS = st.dictionaries(st.sampled_from(["a", "b"]), st.one_of(st.text(max_size=20), st.integers()))
FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def assert_well_formed(template: str, arguments: dict) -> None:
    """The filled URL parses in the HTTP client with the host and port the outbound guard sees."""
    url, _ = render_url(template, {name: arguments.get(name, "x") for name in template_fields(template)})
    guarded = urlsplit(url)
    called = httpx2.URL(url)  # raises httpx2.InvalidURL on a malformed URL
    assert called.scheme in ("http", "https")
    assert called.host == (guarded.hostname or "").encode("idna").decode("ascii").lower() or (
        called.host == guarded.hostname
    ), (url, called.host, guarded.hostname)
    assert (called.port or {"http": 80, "https": 443}[called.scheme]) == (
        guarded.port or {"http": 80, "https": 443}[called.scheme]
    ), url


@pytest.mark.parametrize(
    "template",
    ["http://[::1/x", "http://[::1]x/", "http://[::1]]/", "http://[v1.fe]/", "http://exa mple.com/",
     "http://rates.example.com\\@evil.example/", "http://-rates-.example.com/", "http://1.2.3/{a}",
     "http://rates.example.com/a b/{a}", "http://a@b@rates.example.com/"],
)  # fmt: skip
def test_malformed_templates_are_refused(template):
    """ASVS 5.0 V1.3.6: each of these is not a well-formed http(s) URL (most pass ``urlsplit``, whose
    reading of the host the HTTP client does not share) and is refused."""
    assert url_template_problem(template) is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "template", ["http://[::1/x", "http://[::1]x/{a}", "http://[::1]]/", "http://[::1]/a b"]
)
def test_the_api_refuses_a_malformed_ipv6_literal(editor_client, settings, template):
    """ASVS 5.0 V1.3.6: even where the destination is allowed (an internal tool on ::1), the API
    answers 400 on url_template and stores nothing: the client would not call the host the guard
    judged."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["::1"]
    data = {"name": "Internal", "url_template": template, "http_method": "GET"}
    assert_error(editor_client.post("/api/v1/tools/", data, format="json"), 400, fields=("url_template",))
    assert not Tool.objects.filter(name="Internal").exists()


@FUZZ
@given(template=TEMPLATES, arguments=ARGUMENTS)
def test_an_accepted_template_fills_to_a_well_formed_url(template, arguments):
    """ASVS 5.0 V1.3.6: any template the check accepts, filled with any arguments, is a URL the HTTP
    client parses to the host and port the outbound guard judged."""
    if url_template_problem(template) is None:
        assert_well_formed(template, arguments)


@pytest.mark.django_db
def test_the_api_stores_only_well_formed_templates(editor_client, org, settings):
    """ASVS 5.0 V1.3.6 and V2.2.1: posting fuzzed templates, each is either refused (400 naming
    url_template) or stored, and what is stored is well formed."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["0.0.0.0/0", "::/0"]
    outcomes = {"refused": 0, "stored": 0}

    @settings_for_api
    @given(template=TEMPLATES)
    def post(template):
        with transaction.atomic():
            response = editor_client.post(
                "/api/v1/tools/",
                {"name": "Rates", "url_template": template, "http_method": "GET"},
                format="json",
            )
            if response.status_code == 201:
                outcomes["stored"] += 1
                stored = Tool.objects.get(pk=response.json()["id"]).url_template
                assert url_template_problem(stored) is None
                assert_well_formed(stored, {})
            else:
                outcomes["refused"] += 1
                assert_error(response, 400, fields=("url_template",))
            transaction.set_rollback(True)

    post()
    assert outcomes["refused"] and outcomes["stored"], outcomes


settings_for_api = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
