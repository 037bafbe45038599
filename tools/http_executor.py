"""Calling HTTP tools: URL template, headers (secret ones decrypted only here), JSON body or query
from the arguments, a timeout, a response size cap and the platform's outbound guard.

Every connection goes through ``prisma_glow.outbound`` with the allow-list
``settings.HTTP_TOOL_ALLOWED_HOSTS``: the host is resolved and every address checked before
anything is sent, and the socket goes to a checked address, so a second DNS answer cannot swap in a
private one. A refusal happens before any connection, so it says nothing about whether a port is
open. Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop through the guard again.
"""

from __future__ import annotations

import ipaddress
import json
import re
import string
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx2

from prisma_glow import outbound

MAX_REDIRECTS = 3
USER_AGENT = "PrismaGlow-HTTP-Tool/1.0"
BODY_METHODS = {"POST", "PUT", "PATCH"}


class HttpToolError(Exception):
    """The HTTP call could not be made or did not produce a usable answer; the message says why.

    ``record`` (an ``HttpCallRecord`` or None) says how far the call got.
    """

    record: HttpCallRecord | None = None


class DestinationRefused(HttpToolError):
    """The outbound guard refused the destination."""


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


# --- Building the request ---------------------------------------------------------------------------


_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AUTHORITY_END = re.compile(r"https?://[^/?#]*[/?#]", re.IGNORECASE)
# userinfo@host:port, the host a name, an IPv4 address or a bracketed IPv6 address (RFC 3986 §3.2).
_AUTHORITY = re.compile(r"(?:[^@]*@)?(?P<host>\[[^\]]*\]|[^:@\[\]]*)(?::\d*)?")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_MALFORMED_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f\\]")


def _host_problem(netloc: str) -> str | None:
    """Why the authority (``user@host:port``) of a filled-in URL is malformed, or None.

    ``urlsplit`` is lenient (``[::1]x``, ``exa mple.com`` pass it) while the HTTP client refuses or
    reads them otherwise, so the host the outbound guard judges might not be the one called.
    """
    match = _AUTHORITY.fullmatch(netloc)
    if match is None:
        return (
            f"The host part '{netloc}' is not valid: write a name (rates.example.com), an IPv4 address or "
            "an IPv6 address in brackets ([2001:db8::1]), optionally followed by :port."
        )
    host = match["host"]
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not a valid IPv6 address."
        return None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    try:
        ipaddress.IPv4Address(host)
        return None
    except ValueError:
        pass
    for label in labels:
        try:
            ascii_label = label.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_label = ""
        if not _HOST_LABEL.fullmatch(ascii_label):
            return (
                f"The host name '{host}' is not valid: use letters, digits and hyphens, in dot-separated "
                "parts that neither start nor end with a hyphen."
            )
    if labels[-1].isdigit():
        return f"'{host}' is neither a valid IPv4 address nor a host name."
    return None


def url_template_problem(url_template: str) -> str | None:
    """Why ``url_template`` cannot be used (a sentence a person can act on), or None.

    Placeholders are plain ``{name}`` argument names; ``{{`` and ``}}`` stand for literal braces.
    The scheme, host and port are fixed: an argument may fill the path, query or fragment only, since
    a model choosing the host would choose where the call goes.
    """
    try:
        parsed = list(string.Formatter().parse(url_template))
    except ValueError:
        return (
            "The URL template has an unbalanced brace: write {name} for an argument and {{ or }} for a "
            "literal brace."
        )
    prefix: list[str] = []
    templated = False
    for literal, name, spec, conversion in parsed:
        if not templated:
            prefix.append(literal)
        if name is None:
            continue
        templated = True
        if name == "":
            return "The URL template has an empty placeholder {}: name the argument, e.g. {currency}."
        if not _PLACEHOLDER.fullmatch(name):
            return (
                f"The placeholder {{{name}}} is not an argument name: use letters, digits and _ "
                "(not starting with a digit)."
            )
        if spec or conversion:
            return f"The placeholder {{{name}}} may not carry a format or conversion: write {{{name}}}."
    start = "".join(prefix)
    if not start.lower().startswith(("http://", "https://")):
        return "The URL must start with http:// or https://."
    if templated and not _AUTHORITY_END.match(start):
        return (
            "The host and port of the URL cannot come from an argument: arguments may only fill the path, "
            "query or fragment (after the first /, ? or #)."
        )
    example = url_template.format(**{name: "x" for _, name, _, _ in parsed if name})
    try:
        parts = urlsplit(example)
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError as exc:
        return f"The URL is not valid: {exc}."
    if not parts.hostname:
        return "The URL has no host."
    if _MALFORMED_CHARACTER.search(example):
        return (
            "The URL may not contain spaces, control characters or backslashes: percent-encode them "
            "(%20 for a space)."
        )
    return _host_problem(parts.netloc)


def template_fields(url_template: str) -> list[str]:
    """The ``{name}`` placeholders of a URL template, in order; ``HttpToolError`` if it is unusable."""
    problem = url_template_problem(url_template)
    if problem:
        raise HttpToolError(f"{problem} Edit the tool.")
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
    return url_template.format(**values), used


def secret_headers(tool) -> dict[str, str]:
    """The tool's decrypted secret headers (an empty dict when it has none)."""
    if not tool.secret_headers:
        return {}
    try:
        secret = json.loads(tool.secret_headers)
    except ValueError:
        raise HttpToolError("The tool's secret headers are not a JSON object; edit the tool.")
    if not isinstance(secret, dict):
        raise HttpToolError("The tool's secret headers are not a JSON object; edit the tool.")
    return {str(k): str(v) for k, v in secret.items()}


# What HTTP/1.1 can carry (RFC 9110 §5.1, §5.5): a name is a token; a value is visible ASCII with inner
# spaces or tabs, nothing around it, no line break. httpx would raise (a server error) on anything else.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[ \t]*[\x21-\x7e])*)?")
HEADER_VALUE_PATTERN = "^" + HEADER_VALUE.pattern + "$"


def header_problem(name: str, value: str, *, secret: bool = False) -> str | None:
    """Why HTTP cannot send the header ``name: value``, or None. Never quotes the value (it may be a
    secret), nor a secret header's invalid name (``"Authorization: Bearer …"`` typed as a name)."""
    if not HEADER_NAME.fullmatch(name):
        shown = "of a secret header" if secret else f"{name[:80]!r}"
        return (
            f"The header name {shown} is not a valid HTTP header name (letters, digits and "
            "!#$%&'*+-.^_`|~ only)."
        )
    if not HEADER_VALUE.fullmatch(value):
        return (
            f"The value of the header {name!r} cannot be sent over HTTP: visible ASCII characters only "
            "(inner spaces allowed), without surrounding spaces or line breaks."
        )
    return None


def headers_problems(headers: dict[str, str], *, secret: bool = False) -> list[str]:
    """``header_problem`` for each header (at most five), in order."""
    found = (header_problem(str(n), str(v), secret=secret) for n, v in headers.items())
    return [problem for problem in found if problem is not None][:5]


def tool_headers(tool) -> dict[str, str]:
    """Plain headers merged with the decrypted secret headers (the latter win). ``HttpToolError`` when
    one cannot be sent (``Tool.clean`` refuses such headers; a row stored before that is refused here)."""
    plain, secret = dict(tool.headers or {}), secret_headers(tool)
    problems = headers_problems(plain) + headers_problems(secret, secret=True)
    if problems:
        raise HttpToolError(problems[0] + " Edit the tool.")
    return {
        "User-Agent": USER_AGENT,
        "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
        **plain,
        **secret,
    }


# Headers that carry credentials whatever the tool calls them; with the tool's secret headers, they
# are sent to the tool's own origin only, never after a redirect to another one (as browsers and
# httpx's own redirect handling do for Authorization).
CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or (443 if parts.scheme == "https" else 80),
    )


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
    credentials = CREDENTIAL_HEADERS | {name.lower() for name in secret_headers(tool)}
    record = HttpCallRecord(method=method, url=url, header_names=sorted(headers))
    try:
        return _send(
            method, url, rest, headers, credentials, record, int(tool.max_response_bytes), budget, deadline
        )
    except HttpToolError as exc:
        exc.record = record
        raise


def _send(method, url, rest, headers, credentials, record, cap, budget, deadline):
    with outbound.guarded_client(outbound.http_tool_policy(), follow_redirects=False) as client:
        for hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpToolError(f"Only http:// and https:// URLs can be called (got {url!r}).")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HttpToolError(f"The tool timed out after {budget:g} s.")
            kwargs: dict[str, Any] = {}
            if method in BODY_METHODS:
                kwargs["json"] = rest
            elif rest:
                kwargs["params"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
            try:
                request = client.build_request(
                    method, url, headers=headers, timeout=httpx2.Timeout(remaining), **kwargs
                )
                response = client.send(request, stream=True)
            except outbound.DestinationRefused as exc:
                raise DestinationRefused(f"Refused: {exc}") from exc
            except httpx2.InvalidURL as exc:
                raise HttpToolError(f"Not a valid URL ({url!r}): {exc}.")
            except httpx2.TimeoutException:
                raise HttpToolError(f"The tool timed out after {budget:g} s.")
            except httpx2.HTTPError as exc:
                detail = str(exc).rstrip(".")
                raise HttpToolError(
                    f"The request to {parts.hostname} failed: {exc.__class__.__name__}: {detail}."
                )
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if hop == MAX_REDIRECTS:
                        raise HttpToolError(f"Too many redirects (more than {MAX_REDIRECTS}).")
                    target = urljoin(url, location)
                    if urlsplit(url).scheme == "https" and urlsplit(target).scheme == "http":
                        raise HttpToolError(
                            f"The tool's server redirected from https to plain http ({target}); refused."
                        )
                    if _origin(target) != _origin(url):
                        headers = {k: v for k, v in headers.items() if k.lower() not in credentials}
                    url = target
                    record.redirects.append(url)
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method, rest = "GET", {}
                    elif method not in BODY_METHODS:
                        rest = {}  # the query went with the first request; the Location is the server's
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
