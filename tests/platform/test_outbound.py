"""The outbound guard (``prisma_glow.outbound``): addresses, allow-list entries with ports, save-time
URL checks, and connections pinned to the checked address, against real local servers."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import httpx2
import pytest
from django.core.exceptions import ImproperlyConfigured

from prisma_glow.outbound import (
    DestinationRefused,
    LookupFailed,
    OutboundPolicy,
    address_kind,
    embedded_ipv4,
    guarded_client,
    parse_entry,
)

# --- Addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        # The forms finding 9 got through, each judged by the IPv4 address it carries.
        ("::127.0.0.1", "a loopback"),  # IPv4-compatible
        ("::ffff:0:127.0.0.1", "a loopback"),  # IPv4-translated
        ("64:ff9b::7f00:1", "a loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "a link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "a loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", "a link-local"),  # 6to4 of 169.254.169.254
        # More of the same families.
        ("::ffff:127.0.0.1", "a loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "a link-local"),
        ("::10.0.0.1", "a private"),
        ("64:ff9b::a00:1", "a private"),  # NAT64 of 10.0.0.1
        ("2002:c0a8:101::1", "a private"),  # 6to4 of 192.168.1.1
        ("2002:6440:1::", "a shared-address-space"),  # 6to4 of 100.64.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a loopback"),  # Teredo, client 127.0.0.1
        ("2001:0:a9fe:a9fe:8000:63bf:3fff:fdd2", "a link-local"),  # Teredo, server 169.254.169.254
        ("64:ff9b:1::808:808", "a local-use NAT64"),  # 64:ff9b:1::/48 is never public
        # Plain addresses.
        ("127.0.0.1", "a loopback"),
        ("127.8.9.10", "a loopback"),
        ("10.1.2.3", "a private"),
        ("172.16.0.1", "a private"),
        ("192.168.0.1", "a private"),
        ("169.254.169.254", "a link-local"),
        ("100.64.0.1", "a shared-address-space"),
        ("0.0.0.0", "an unspecified"),
        ("224.0.0.1", "a multicast"),
        ("239.255.255.250", "a multicast"),
        ("240.0.0.1", "a private"),  # reserved 240/4, which Python files under private too
        ("255.255.255.255", "a private"),
        ("192.0.2.1", "a private"),  # documentation range
        ("::1", "a loopback"),
        ("::", "an unspecified"),
        ("fe80::1", "a link-local"),
        ("fd00::1", "a private"),
        ("ff02::1", "a multicast"),
        ("ff0e::1", "a multicast"),
        ("2001:db8::1", "a private"),
    ],
)
def test_non_public_addresses_and_the_ipv6_forms_that_carry_one(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind
    with pytest.raises(DestinationRefused, match=kind):
        OutboundPolicy([]).resolve(address, 80)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of a public address: the gateway reaches 8.8.8.8
        "2002:808:808::1",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, public server and client (8.8.8.8)
    ],
)
def test_public_addresses_and_forms_carrying_a_public_ipv4_pass(address):
    assert address_kind(ipaddress.ip_address(address)) is None
    assert OutboundPolicy([]).resolve(address, 443) == [str(ipaddress.ip_address(address))]


def test_embedded_ipv4_of_each_form():
    def carried(text):
        return [str(a) for a in embedded_ipv4(ipaddress.IPv6Address(text)) or []]

    assert carried("::ffff:1.2.3.4") == ["1.2.3.4"]
    assert carried("::ffff:0:1.2.3.4") == ["1.2.3.4"]
    assert carried("::1.2.3.4") == ["1.2.3.4"]
    assert carried("64:ff9b::102:304") == ["1.2.3.4"]
    assert carried("2002:102:304::") == ["1.2.3.4"]
    assert carried("2001:0:4136:e378:8000:63bf:3fff:fdd2") == ["65.54.227.120", "192.0.2.45"]
    assert carried("::1") == [] and carried("::") == [] and carried("2606:4700::1") == []


# --- Allow-list entries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "network", "port"),
    [
        ("localhost", "localhost", None, None),
        ("localhost:11434", "localhost", None, 11434),
        ("Ollama.Internal:11434", "ollama.internal", None, 11434),
        ("127.0.0.1", None, "127.0.0.1/32", None),
        ("127.0.0.1:8000", None, "127.0.0.1/32", 8000),
        ("10.0.0.0/8", None, "10.0.0.0/8", None),
        ("10.0.0.0/8:443", None, "10.0.0.0/8", 443),
        ("::1", None, "::1/128", None),
        ("[::1]:8080", None, "::1/128", 8080),
        ("fd00::/8", None, "fd00::/8", None),
        ("[fd00::/8]:443", None, "fd00::/8", 443),
    ],
)
def test_allow_list_entry_forms(text, host, network, port):
    entry = parse_entry(text)
    assert entry.host == host
    assert (str(entry.network) if entry.network else None) == network
    assert entry.port == port


@pytest.mark.parametrize(
    "text",
    ["localhost:", "localhost:0", "localhost:70000", "[::1", "[::1]8080", "a b", "http://x", "10.0.0.0/8/8"],
)
def test_malformed_allow_list_entries_are_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured, match="PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS"):
        OutboundPolicy([text], setting="PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS")


def test_an_entry_with_a_port_allows_only_that_port():
    policy = OutboundPolicy(["127.0.0.1:11434", "[::1]:8080", "10.0.0.0/8:443", "192.168.1.0/24"])
    assert policy.resolve("127.0.0.1", 11434) == ["127.0.0.1"]
    assert policy.resolve("::1", 8080) == ["::1"]
    assert policy.resolve("10.9.8.7", 443) == ["10.9.8.7"]
    for host, port in [("127.0.0.1", 11435), ("127.0.0.1", 80), ("::1", 8081), ("10.9.8.7", 80)]:
        with pytest.raises(DestinationRefused):
            policy.resolve(host, port)
    # Without a port: any port.
    assert policy.resolve("192.168.1.20", 22) == ["192.168.1.20"]
    assert policy.resolve("192.168.1.20", 11434) == ["192.168.1.20"]


def test_a_host_name_entry_allows_what_that_name_resolves_to():
    policy = OutboundPolicy(["localhost:11434"])
    assert set(policy.resolve("localhost", 11434)) <= {"127.0.0.1", "::1"}
    with pytest.raises(DestinationRefused, match="localhost resolves to a loopback address"):
        policy.resolve("localhost", 11435)
    # The name is allowed, not its address: reaching 127.0.0.1 by number is not.
    with pytest.raises(DestinationRefused):
        policy.resolve("127.0.0.1", 11434)


def test_an_ipv4_network_entry_covers_the_ipv4_mapped_form():
    policy = OutboundPolicy(["127.0.0.0/8:9000"])
    assert policy.resolve("::ffff:127.0.0.1", 9000) == ["::ffff:7f00:1"]
    with pytest.raises(DestinationRefused):
        policy.resolve("64:ff9b::7f00:1", 9000)  # the NAT64 gateway is elsewhere: not covered


# --- Save-time URL checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/v1", "169.254.169.254 is a link-local address"),
        ("http://127.0.0.1:11434/v1", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:11434/v1", "is a loopback address"),
        ("http://[64:ff9b::a9fe:a9fe]/latest", "is a link-local address"),
        ("http://localhost:11434/v1", "localhost resolves to a loopback address"),
        ("ftp://files.example.com/", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("http://example.com:99999/", "Not a valid URL"),
    ],
)
def test_check_url_refuses(url, message):
    with pytest.raises(DestinationRefused, match=message):
        OutboundPolicy([], setting="PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS").check_url(url)


def test_check_url_lets_a_name_that_does_not_resolve_yet_pass():
    """The save-time check cannot know names that only resolve from the workers' network (or later):
    they pass, and each call is checked again."""
    OutboundPolicy([]).check_url("https://model-server.invalid/v1")
    with pytest.raises(LookupFailed):
        OutboundPolicy([]).resolve("model-server.invalid", 443)


# --- Connections through the guard, against a real local server -----------------------------------


def test_a_refused_destination_is_never_connected_to(httpserver):
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    with guarded_client(OutboundPolicy([], setting="X")) as client:
        with pytest.raises(DestinationRefused):
            client.get(httpserver.url_for("/v1/models"))
    assert len(httpserver.log) == 0


def test_the_allow_list_port_decides(httpserver):
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    with guarded_client(OutboundPolicy([f"{httpserver.host}:{httpserver.port}"])) as client:
        assert client.get(httpserver.url_for("/v1/models")).json() == {"data": []}
    with guarded_client(OutboundPolicy([f"{httpserver.host}:{httpserver.port + 1}"])) as client:
        with pytest.raises(DestinationRefused):
            client.get(httpserver.url_for("/v1/models"))
    assert len(httpserver.log) == 1


def test_a_refusal_is_the_same_for_an_open_and_a_closed_port(httpserver):
    """The guard decides before connecting: whether something listens does not change the answer."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    messages = []
    with guarded_client(OutboundPolicy([])) as client:
        for port in (httpserver.port, closed_port):
            with pytest.raises(DestinationRefused) as caught:
                client.get(f"http://127.0.0.1:{port}/")
            messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_redirects_are_checked_at_each_hop(httpserver):
    """Even a client that follows redirects goes through the guard for each new connection."""
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    with guarded_client(OutboundPolicy([f"{httpserver.host}:{httpserver.port}"]), follow_redirects=True) as c:
        with pytest.raises(DestinationRefused, match="169.254.169.254 is a link-local address"):
            c.get(httpserver.url_for("/start"))


class FlipResolver:
    """A resolver (``socket.getaddrinfo``) answering ``answers`` in turn, the last one from then on:
    a DNS-rebinding name. Only the lookup is replaced; the server is real."""

    def __init__(self, monkeypatch, *answers):
        self.answers = list(answers)
        self.calls = 0
        monkeypatch.setattr("prisma_glow.outbound.system_lookup", self)

    def __call__(self, host, port):
        self.calls += 1
        address = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]


def test_a_rebinding_name_cannot_reach_loopback_after_a_public_answer(httpserver, monkeypatch):
    """First answer public (it passes the save-time check), then loopback: the connection is checked
    with the answer it actually uses and refused; the local server never sees a request."""
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    resolver = FlipResolver(monkeypatch, "93.184.216.34", "127.0.0.1")
    policy = OutboundPolicy([])
    policy.check_url(f"http://rebind.example:{httpserver.port}/v1")
    with guarded_client(policy) as client:
        with pytest.raises(DestinationRefused, match="rebind.example resolves to a loopback address"):
            client.get(f"http://rebind.example:{httpserver.port}/v1/models")
    assert resolver.calls == 2 and len(httpserver.log) == 0


def test_a_connection_goes_to_the_address_that_was_checked(httpserver, monkeypatch):
    """One lookup per connection, and the socket goes to its checked answer: a name allowed by the
    list reaches the local server although the system resolver knows nothing of it (nothing else
    resolved it); the Host header (and TLS server name) stays the URL's."""
    httpserver.expect_request("/v1/models").respond_with_json({"data": []})
    resolver = FlipResolver(monkeypatch, "127.0.0.1", "192.0.2.1")
    with guarded_client(OutboundPolicy([f"pinned.example:{httpserver.port}"])) as client:
        response = client.get(f"http://pinned.example:{httpserver.port}/v1/models")
        assert response.json() == {"data": []}
    assert resolver.calls == 1
    assert httpserver.log[0][0].headers["Host"] == f"pinned.example:{httpserver.port}"


def test_a_name_with_one_internal_address_among_public_ones_is_refused(monkeypatch):
    class Mixed:
        def __call__(self, host, port):
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
            ]

    monkeypatch.setattr("prisma_glow.outbound.system_lookup", Mixed())
    with pytest.raises(DestinationRefused, match="mixed.example resolves to a private address"):
        OutboundPolicy([]).resolve("mixed.example", 443)


def test_a_lookup_failure_is_a_connect_error():
    with guarded_client(OutboundPolicy([])) as client:
        with pytest.raises(httpx2.ConnectError, match="Cannot resolve the host"):
            client.get("http://no-such-host.invalid/")


def test_the_system_check_names_a_malformed_entry(settings):
    from prisma_glow.checks import check_allow_lists

    settings.PROVIDER_ALLOWED_HOSTS = ["localhost:11434", "http://ollama:11434"]
    settings.HTTP_TOOL_ALLOWED_HOSTS = ["10.0.0.0/8"]
    errors = check_allow_lists()
    assert [e.id for e in errors] == ["prisma_glow.E101"]
    assert "PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS" in errors[0].msg and "http://ollama:11434" in errors[0].msg
    settings.PROVIDER_ALLOWED_HOSTS = ["localhost:11434"]
    assert check_allow_lists() == []


@pytest.fixture
def tls_server(tmp_path):
    """A real HTTPS server on 127.0.0.1 whose self-signed certificate names ``pinned.example`` only."""
    import datetime
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("pinned.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"host": "%s"}' % self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], ssl.create_default_context(cafile=str(cert_file))
    finally:
        server.shutdown()
        server.server_close()


def test_tls_through_a_pinned_connection_verifies_the_urls_host_name(tls_server, monkeypatch):
    """The socket goes to the checked address while TLS checks the certificate against the URL's
    name: the right name passes, and the same server reached by its address fails verification."""
    from prisma_glow.outbound import GuardedTransport

    port, trust = tls_server
    FlipResolver(monkeypatch, "127.0.0.1")
    policy = OutboundPolicy([f"pinned.example:{port}", f"127.0.0.1:{port}"])
    with httpx2.Client(transport=GuardedTransport(policy, verify=trust)) as client:
        assert client.get(f"https://pinned.example:{port}/").json() == {"host": f"pinned.example:{port}"}
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED|IP address mismatch"):
            client.get(f"https://127.0.0.1:{port}/")


def test_names_whose_lookups_hang_do_not_hold_up_other_lookups(monkeypatch):
    """``getaddrinfo`` cannot be cancelled: lookups given up on stay blocked. Eight of them (more than
    any small shared pool) must not make another organisation's lookup wait."""
    from prisma_glow import outbound

    released = threading.Event()
    real_lookup = outbound.system_lookup

    def lookup(host, port):
        if host.endswith(".hang.example"):
            released.wait(30)
        return real_lookup(host, port)

    monkeypatch.setattr("prisma_glow.outbound.system_lookup", lookup)
    policy = OutboundPolicy(["localhost"])
    try:
        for n in range(8):
            with pytest.raises(LookupFailed, match="took longer"):
                policy.resolve(f"n{n}.hang.example", 443, timeout=0.05)
        started = time.monotonic()
        assert policy.resolve("localhost", 80, timeout=5)
        assert time.monotonic() - started < 2
    finally:
        released.set()
