"""HTTP tools against a real local server: templates, headers, body, limits and the SSRF guard."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from werkzeug import Response

from prisma_glow.outbound import DestinationRefused, LookupFailed, http_tool_policy
from tests.factories import ToolFactory
from tools.registry import run_tool

pytestmark = pytest.mark.django_db


@pytest.fixture
def allow_local(settings):
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]


def http_tool(httpserver, path="/rates/{currency}", **kwargs):
    defaults = {
        "url_template": httpserver.url_for(path).replace("%7B", "{").replace("%7D", "}"),
        "http_method": "POST",
        "input_schema": {
            "type": "object",
            "properties": {"currency": {"type": "string"}, "amount": {"type": "string"}},
        },
    }
    defaults.update(kwargs)
    return ToolFactory(**defaults)


def test_post_sends_json_body_url_arguments_and_secret_headers(httpserver, allow_local):
    """Template arguments go into the (quoted) path, the rest into the JSON body; secret headers are sent
    but never recorded."""
    httpserver.expect_request(
        "/rates/EUR USD",
        method="POST",
        json={"amount": "10.00"},
        headers={"Authorization": "Bearer s3cret", "X-Plain": "yes"},
    ).respond_with_json({"rate": "1.08"})
    tool = http_tool(
        httpserver, headers={"X-Plain": "yes"}, secret_headers=json.dumps({"Authorization": "Bearer s3cret"})
    )
    tool.refresh_from_db()
    result = run_tool(tool, {"currency": "EUR USD", "amount": "10.00"})
    assert result.ok, result.error
    assert result.output == {"rate": "1.08"}
    assert result.details["http"]["status_code"] == 200
    assert "s3cret" not in json.dumps(result.to_dict())
    assert "Authorization" in result.details["http"]["headers"]


def test_get_sends_remaining_arguments_as_query(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR", method="GET", query_string="amount=5").respond_with_data(
        "plain text", content_type="text/plain"
    )
    result = run_tool(http_tool(httpserver, http_method="GET"), {"currency": "EUR", "amount": "5"})
    assert result.ok and result.output == "plain text"


def test_error_status_is_a_failed_result(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR").respond_with_json({"detail": "nope"}, status=404)
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert not result.ok
    assert "HTTP 404" in result.error
    assert result.details["http"]["status_code"] == 404


def test_response_size_cap(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR").respond_with_data("x" * 5000)
    result = run_tool(http_tool(httpserver, max_response_bytes=1000), {"currency": "EUR"})
    assert not result.ok and "larger than the tool's limit of 1000 bytes" in result.error


def test_timeout(httpserver, allow_local):
    # The server answers after 10 s, or as soon as the tool has given up: the local server serves one
    # request at a time, and a later test's request must not queue behind this one.
    done = threading.Event()

    def slow(request):
        done.wait(10)
        return Response("late")

    httpserver.expect_request("/rates/EUR").respond_with_handler(slow)
    started = time.monotonic()
    try:
        result = run_tool(http_tool(httpserver, timeout_seconds=1), {"currency": "EUR"})
    finally:
        done.set()
    assert not result.ok and result.error == "The tool timed out after 1 s."
    # Well before the server answers; the room above the 1 s timeout is for a loaded machine.
    assert time.monotonic() - started < 3.5


def test_malformed_json_response(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR").respond_with_data("{not json", content_type="application/json")
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert not result.ok and "not valid JSON" in result.error


def test_loopback_is_refused_without_the_allow_list(httpserver, settings):
    settings.HTTP_TOOL_ALLOWED_HOSTS = []
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert not result.ok
    assert "loopback address" in result.error
    assert len(httpserver.log) == 0


def test_redirect_to_a_private_destination_is_refused(httpserver, settings):
    """An allowed host may not redirect the call to a destination the allow-list does not name."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    httpserver.expect_request("/rates/EUR").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert not result.ok
    assert "169.254.169.254 is a link-local address" in result.error


def test_redirects_within_allowed_hosts_are_followed(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR").respond_with_data("", status=303, headers={"Location": "/final"})
    httpserver.expect_request("/final", method="GET").respond_with_json({"ok": True})
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert result.ok and result.output == {"ok": True}
    assert result.details["http"]["redirects"] == [httpserver.url_for("/final")]


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "shared-address-space"),
    ],
)
def test_non_public_addresses_are_refused(settings, host, kind):
    settings.HTTP_TOOL_ALLOWED_HOSTS = []
    with pytest.raises(DestinationRefused, match=kind):
        http_tool_policy().resolve(host, 80)


def test_allow_list_accepts_networks(settings):
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["10.0.0.0/8"]
    assert http_tool_policy().resolve("10.1.2.3", 80) == ["10.1.2.3"]
    with pytest.raises(DestinationRefused):
        http_tool_policy().resolve("192.168.1.1", 80)


def test_refused_connection(allow_local):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    tool = ToolFactory(url_template=f"http://127.0.0.1:{port}/x", input_schema={"type": "object"})
    result = run_tool(tool, {})
    assert not result.ok and "failed" in result.error


def test_slow_dns_is_bounded(monkeypatch):
    def slow_lookup(host, port):
        time.sleep(1.5)
        return []

    monkeypatch.setattr("prisma_glow.outbound.system_lookup", slow_lookup)
    started = time.monotonic()
    with pytest.raises(LookupFailed, match="took longer than 0.1 s"):
        http_tool_policy().resolve("slow.example", 443, timeout=0.1)
    assert time.monotonic() - started < 1.2


def test_a_refused_tool_says_nothing_of_the_port(httpserver, settings):
    """The tool's result goes to the model and the trace: a refused destination reads the same whether
    a service listens on the port or not (the guard refuses before connecting)."""
    settings.HTTP_TOOL_ALLOWED_HOSTS = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = sock.getsockname()[1]
    sock.close()
    errors = []
    for port in (httpserver.port, closed):
        tool = ToolFactory(url_template=f"http://127.0.0.1:{port}/x", input_schema={"type": "object"})
        result = run_tool(tool, {})
        assert not result.ok
        errors.append(result.error)
    assert errors[0] == errors[1]
    assert errors[0].startswith(
        "Refused: 127.0.0.1 is a loopback address: not allowed by the outbound policy"
    )
    assert len(httpserver.log) == 0


def test_an_allow_list_entry_with_a_port_allows_that_port_only(httpserver, settings):
    httpserver.expect_request("/rates/EUR").respond_with_json({"rate": "1"})
    settings.HTTP_TOOL_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port + 1}"]
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert not result.ok and "not allowed by the outbound policy" in result.error
    settings.HTTP_TOOL_ALLOWED_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    result = run_tool(http_tool(httpserver), {"currency": "EUR"})
    assert result.ok and result.output == {"rate": "1"}


@pytest.fixture
def second_server():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_credentials_never_follow_a_redirect_to_another_origin(httpserver, second_server, allow_local):
    """The model chooses the path: a vendor's open redirect must not hand the firm's token to another
    server. Secret headers, Authorization and Cookie go to the tool's own origin only; plain headers
    still follow, and the query is not added again to the server's Location."""
    other = f"http://localhost:{second_server.port}/landing?from=vendor"
    httpserver.expect_request("/rates/EUR").respond_with_data("", status=302, headers={"Location": other})
    second_server.expect_request("/landing").respond_with_json({"landed": True})
    tool = http_tool(
        httpserver,
        http_method="GET",
        headers={"X-Plain": "yes", "Cookie": "session=plain-but-sensitive"},
        secret_headers=json.dumps({"Authorization": "Bearer s3cret", "X-Api-Key": "k3y"}),
    )
    result = run_tool(tool, {"currency": "EUR", "amount": "10"})
    assert result.ok and result.output == {"landed": True}
    [(first, _)] = httpserver.log
    assert first.headers["Authorization"] == "Bearer s3cret" and first.args["amount"] == "10"
    [(landed, _)] = second_server.log
    assert "Authorization" not in landed.headers and "X-Api-Key" not in landed.headers
    assert "Cookie" not in landed.headers and landed.headers["X-Plain"] == "yes"
    assert landed.args.to_dict() == {"from": "vendor"}


def test_credentials_follow_a_redirect_within_the_origin(httpserver, allow_local):
    httpserver.expect_request("/rates/EUR").respond_with_data("", status=307, headers={"Location": "/v2/EUR"})
    httpserver.expect_request("/v2/EUR", method="POST").respond_with_json({"ok": True})
    tool = http_tool(httpserver, secret_headers=json.dumps({"Authorization": "Bearer s3cret"}))
    result = run_tool(tool, {"currency": "EUR", "amount": "10"})
    assert result.ok
    [_, (second, _)] = httpserver.log
    assert second.headers["Authorization"] == "Bearer s3cret" and json.loads(second.data) == {"amount": "10"}
