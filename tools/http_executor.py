"""Calling HTTP tools: URL template, headers (secret ones decrypted only here), JSON body or query
from the arguments, a timeout, a response size cap and an SSRF guard.

The guard resolves the host and refuses any destination that is not a public address (private,
loopback, link-local, reserved, multicast…) unless ``settings.HTTP_TOOL_ALLOWED_HOSTS`` names the
host or a network containing the address. The connection then goes to the address that was checked
(the URL's host only travels in the Host header and TLS SNI), so a second DNS answer cannot swap in
a private address. Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked again.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import string
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx2
from django.conf import settings

MAX_REDIRECTS = 3
USER_AGENT = "PrismaGlow-HTTP-Tool/1.0"
BODY_METHODS = {"POST", "PUT", "PATCH"}


class HttpToolError(Exception):
    """The HTTP call could not be made or did not produce a usable answer; the message says why.

    ``record`` (an ``HttpCallRecord`` or None) says how far the call got.
    """

    record: HttpCallRecord | None = None


class DestinationRefused(HttpToolError):
    """The SSRF guard refused the destination."""


@dataclass
class HttpCallRecord:
    """What was sent and received, safe for the trace: secret header values are never in it."""

    method: str
    url: str
    status_code: int | None = None
    header_names: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    response_bytes: int = 0

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "url": self.url,
            "status_code": self.status_code,
            "headers": self.header_names,
            "redirects": self.redirects,
            "response_bytes": self.response_bytes,
        }


# --- Destination checks ---------------------------------------------------------------------------


def _allowed_entries() -> tuple[set[str], list[ipaddress._BaseNetwork]]:
    hosts: set[str] = set()
    networks: list[ipaddress._BaseNetwork] = []
    for entry in getattr(settings, "HTTP_TOOL_ALLOWED_HOSTS", []) or []:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            hosts.add(entry)
    return hosts, networks


_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="http-tool-dns")


def resolve_destination(host: str, port: int, *, timeout: float = 5.0) -> str:
    """The address to connect to for ``host``: every resolved address must be public or allowed.

    The lookup itself is bounded by ``timeout`` (the system resolver has no timeout of its own).
    Raises ``DestinationRefused`` naming the host and the kind of address.
    """
    allowed_hosts, allowed_networks = _allowed_entries()
    host_allowed = host.lower() in allowed_hosts
    lookup = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=max(0.001, timeout))
    except FutureTimeout:
        raise HttpToolError(f"Resolving the host {host!r} took longer than {timeout:g} s.")
    except (socket.gaierror, UnicodeError) as exc:
        raise HttpToolError(f"Cannot resolve the host {host!r}: {exc}.")
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        addresses.append(address)
    if not addresses:
        raise HttpToolError(f"The host {host!r} has no address.")
    for address in addresses:
        if address.is_global and not address.is_multicast:
            continue
        if host_allowed or any(address in network for network in allowed_networks):
            continue
        if address.is_loopback:
            kind = "a loopback"
        elif address.is_link_local:
            kind = "a link-local"
        elif address.is_private:
            kind = "a private"
        else:
            kind = "a non-public"
        raise DestinationRefused(
            f"Refused: {host} resolves to {kind} address ({address}); HTTP tools may only reach public "
            "addresses unless HTTP_TOOL_ALLOWED_HOSTS names the destination."
        )
    return str(addresses[0])


# --- Building the request ---------------------------------------------------------------------------


def template_fields(url_template: str) -> list[str]:
    """The ``{name}`` placeholders of a URL template, in order."""
    return [name for _, name, _, _ in string.Formatter().parse(url_template) if name]


def render_url(url_template: str, arguments: dict[str, Any]) -> tuple[str, set[str]]:
    """The URL with each ``{name}`` replaced by the URL-quoted argument; also the names used."""
    used = set(template_fields(url_template))
    missing = sorted(name for name in used if name not in arguments)
    if missing:
        raise HttpToolError(f"The URL needs the argument(s): {', '.join(missing)}.")
    values = {}
    for name in used:
        value = arguments[name]
        text = value if isinstance(value, str) else json.dumps(value)
        values[name] = quote(text, safe="")
    try:
        return url_template.format(**values), used
    except (IndexError, KeyError, ValueError) as exc:
        raise HttpToolError(f"The URL template is malformed: {exc}.")


def tool_headers(tool) -> dict[str, str]:
    """Plain headers merged with the decrypted secret headers (the latter win)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json, text/plain;q=0.9, */*;q=0.1"}
    headers.update(tool.headers or {})
    if tool.secret_headers:
        try:
            secret = json.loads(tool.secret_headers)
        except ValueError:
            raise HttpToolError("The tool's secret headers are not a JSON object; edit the tool.")
        if not isinstance(secret, dict):
            raise HttpToolError("The tool's secret headers are not a JSON object; edit the tool.")
        headers.update({str(k): str(v) for k, v in secret.items()})
    return headers


def _pinned(url: str, address: str) -> tuple[str, str, dict]:
    """``url`` with its host replaced by ``address``; the Host header value and request extensions."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = netloc_host + (f":{parts.port}" if parts.port else "")
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, host_header, extensions


# --- The call -------------------------------------------------------------------------------------


def call_http_tool(
    tool, arguments: dict[str, Any], *, timeout: float | None = None
) -> tuple[Any, HttpCallRecord]:
    """Call ``tool`` with ``arguments``; returns the decoded response (JSON value or text) and a record.

    ``timeout`` (seconds, default the tool's) bounds the whole call, redirects and body included.
    Raises ``HttpToolError`` (or ``DestinationRefused``) with a message fit for the trace.
    """
    budget = float(timeout if timeout is not None else tool.timeout_seconds)
    deadline = time.monotonic() + budget
    method = tool.http_method.upper()
    url, used = render_url(tool.url_template, arguments)
    rest = {k: v for k, v in arguments.items() if k not in used}
    headers = tool_headers(tool)
    record = HttpCallRecord(method=method, url=url, header_names=sorted(headers))
    try:
        return _send(method, url, rest, headers, record, int(tool.max_response_bytes), budget, deadline)
    except HttpToolError as exc:
        exc.record = record
        raise


def _send(method, url, rest, headers, record, cap, budget, deadline):
    with httpx2.Client(trust_env=False, follow_redirects=False) as client:
        for hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpToolError(f"Only http:// and https:// URLs can be called (got {url!r}).")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = resolve_destination(parts.hostname, port, timeout=min(5.0, deadline - time.monotonic()))
            pinned_url, host_header, extensions = _pinned(url, address)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HttpToolError(f"The tool timed out after {budget:g} s.")
            kwargs: dict[str, Any] = {}
            if method in BODY_METHODS:
                kwargs["json"] = rest
            elif rest:
                kwargs["params"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
            request = client.build_request(
                method,
                pinned_url,
                headers={**headers, "Host": host_header},
                timeout=httpx2.Timeout(remaining),
                extensions=extensions,
                **kwargs,
            )
            try:
                response = client.send(request, stream=True)
            except httpx2.TimeoutException:
                raise HttpToolError(f"The tool timed out after {budget:g} s.")
            except httpx2.HTTPError as exc:
                raise HttpToolError(
                    f"The request to {parts.hostname} failed: {exc.__class__.__name__}: {exc}."
                )
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if hop == MAX_REDIRECTS:
                        raise HttpToolError(f"Too many redirects (more than {MAX_REDIRECTS}).")
                    url = urljoin(url, location)
                    record.redirects.append(url)
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, rest = "GET", {}
                    continue
                record.status_code = response.status_code
                body = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > cap:
                            raise HttpToolError(
                                f"The response is larger than the tool's limit of {cap} bytes."
                            )
                        if time.monotonic() > deadline:
                            raise HttpToolError(f"The tool timed out after {budget:g} s.")
                except httpx2.TimeoutException:
                    raise HttpToolError(f"The tool timed out after {budget:g} s.")
                except httpx2.HTTPError as exc:
                    raise HttpToolError(f"Reading the response failed: {exc.__class__.__name__}: {exc}.")
                record.response_bytes = len(body)
                content_type = response.headers.get("content-type", "")
                text = bytes(body).decode(response.encoding or "utf-8", errors="replace")
                if "json" in content_type:
                    try:
                        payload: Any = json.loads(text) if text else None
                    except ValueError:
                        raise HttpToolError(
                            f"The response claims JSON but is not valid JSON (HTTP {response.status_code})."
                        )
                else:
                    payload = text
                if response.status_code >= 400:
                    snippet = text[:300]
                    raise HttpToolError(f"The tool answered HTTP {response.status_code}: {snippet}")
                return payload, record
            finally:
                response.close()
    raise HttpToolError(f"Too many redirects (more than {MAX_REDIRECTS}).")  # pragma: no cover
