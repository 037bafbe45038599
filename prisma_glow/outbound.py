"""The outbound guard: every call the platform makes to a URL that a user configured goes through here.

A destination is allowed when EVERY address its host resolves to is public, or when an entry of the
caller's allow-list names it. Refused: private, loopback, link-local, reserved, multicast,
unspecified and shared-address-space (100.64.0.0/10) addresses, and IPv6 forms that carry an IPv4
address — IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``), IPv4-compatible
(``::a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (``2001::/32``) — judged
by the IPv4 address they carry, so ``64:ff9b::7f00:1`` is loopback and ``64:ff9b::808:808`` public.
The local-use NAT64 prefix ``64:ff9b:1::/48`` is never public.

Allow-list entries (settings such as ``HTTP_TOOL_ALLOWED_HOSTS`` and ``PROVIDER_ALLOWED_HOSTS``) are
host names, IP addresses or CIDR networks, each optionally with a port: ``localhost``,
``ollama.internal:11434``, ``10.0.0.0/8``, ``10.0.0.0/8:443``, ``[::1]:8080``, ``fd00::/8``. An entry
with a port allows only that port; without one, any port. A host-name entry allows whatever that
name resolves to (the firm controls its own DNS); an address or network entry allows the addresses
it contains, whatever name led there.

The connection is pinned: ``GuardedTransport`` resolves and checks the host when it opens a TCP
connection and connects to one of the addresses it checked, so a second DNS answer (rebinding)
cannot swap in another address, and every redirect hop opens its own checked connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_LOOKUP_TIMEOUT = 5.0
# Save-time checks of a configured URL wait this long for DNS at most (the call checks again).
SAVE_LOOKUP_TIMEOUT = 2.0

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$"
)


class OutboundError(Exception):
    """A destination could not be reached through the guard; the message is fit for the caller."""


class DestinationRefused(OutboundError):
    """The guard refused the destination (``host``, ``port``, the refused ``address`` and its ``kind``)."""

    def __init__(
        self, message: str, *, host: str = "", port: int | None = None, address: str = "", kind: str = ""
    ):
        super().__init__(message)
        self.host, self.port, self.address, self.kind = host, port, address, kind


class LookupFailed(OutboundError):
    """The host did not resolve (``timed_out`` when the lookup outlasted its time)."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


# --- Judging addresses ----------------------------------------------------------------------------


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 address(es) an IPv6 address stands for, or None when it carries none.

    Teredo carries two (its server and the client), both of which must be acceptable.
    """
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    packed = address.packed
    if address in _IPV4_TRANSLATED or address in _NAT64:
        return [ipaddress.IPv4Address(packed[12:])]
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: nor ::1
        return [ipaddress.IPv4Address(packed[12:])]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        server, client = address.teredo
        return [server, client]
    return None


def _ipv4_kind(address: ipaddress.IPv4Address) -> str | None:
    if address.is_unspecified:
        return "an unspecified"
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_multicast:
        return "a multicast"
    if address in _SHARED_ADDRESS_SPACE:
        return "a shared-address-space"
    if address.is_private:
        return "a private"
    if address.is_reserved:
        return "a reserved"
    if not address.is_global:
        return "a non-public"
    return None


def address_kind(address: Address) -> str | None:
    """Why ``address`` is not public ("a loopback", "a link-local"…), or None when it is public."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_kind(address)
    if address in _NAT64_LOCAL:
        return "a local-use NAT64"
    carried = embedded_ipv4(address)
    if carried is not None:
        for ipv4 in carried:
            kind = _ipv4_kind(ipv4)
            if kind is not None:
                return kind
        return None
    if address.is_unspecified:
        return "an unspecified"
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_multicast:
        return "a multicast"
    if address.is_site_local or address.is_private:
        return "a private"
    if address.is_reserved:
        return "a reserved"
    if not address.is_global:
        return "a non-public"
    return None


# --- The allow-list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a host name or a network, and a port (None: any port)."""

    text: str
    host: str | None = None
    network: Network | None = None
    port: int | None = None

    def allows(self, host: str, address: Address, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host
        assert self.network is not None
        if address.version == self.network.version and address in self.network:
            return True
        mapped = getattr(address, "ipv4_mapped", None)
        return mapped is not None and mapped.version == self.network.version and mapped in self.network


def parse_entry(text: str) -> AllowEntry:
    """An ``AllowEntry`` from ``host``, ``host:port``, ``a.b.c.d[/n][:port]``, ``v6[/n]`` or
    ``[v6[/n]]:port``. Raises ValueError for anything else."""
    entry = text.strip().lower()
    if not entry:
        raise ValueError("an empty entry")
    port_text = None
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise ValueError(f"{text!r} has no closing ']'")
        target, rest = entry[1:close], entry[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected ':port' after ']'")
            port_text = rest[1:]
    elif entry.count(":") == 1:
        target, port_text = entry.split(":")
    else:
        target = entry
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r} has an invalid port")
        port = int(port_text)
    try:
        return AllowEntry(text=text, network=ipaddress.ip_network(target, strict=False), port=port)
    except ValueError:
        pass
    if ":" in target or "/" in target or not _HOST_NAME.match(target):
        raise ValueError(f"{text!r} is neither a host name, an IP address nor a network")
    return AllowEntry(text=text, host=target.rstrip("."), port=port)


class OutboundPolicy:
    """An allow-list (from the setting ``setting``) and the checks made against it."""

    def __init__(self, entries: Iterable[str], *, setting: str = ""):
        self.setting = setting
        parsed = []
        for text in entries or []:
            if not str(text).strip():
                continue
            try:
                parsed.append(parse_entry(str(text)))
            except ValueError as exc:
                raise ImproperlyConfigured(f"{setting or 'The outbound allow-list'}: {exc}.") from exc
        self.entries: tuple[AllowEntry, ...] = tuple(parsed)

    @classmethod
    def from_setting(cls, name: str, env_name: str = "") -> OutboundPolicy:
        """The policy of ``settings.<name>``, read at each call (tests and reloads change it)."""
        return cls(getattr(settings, name, []) or [], setting=env_name or name)

    def allows(self, host: str, address: Address, port: int) -> bool:
        host = host.lower().rstrip(".")
        return any(entry.allows(host, address, port) for entry in self.entries)

    def check_address(self, host: str, address: Address, port: int) -> None:
        """Raise ``DestinationRefused`` unless ``address`` (reached as ``host:port``) is allowed."""
        kind = address_kind(address)
        if kind is None or self.allows(host, address, port):
            return
        literal = _literal_address(host) is not None
        where = f"{host} is {kind} address" if literal else f"{host} resolves to {kind} address"
        hint = f" unless {self.setting} allows it" if self.setting else ""
        raise DestinationRefused(
            f"{where}: not allowed by the outbound policy (only public addresses can be reached{hint}).",
            host=host,
            port=port,
            address=str(address),
            kind=kind,
        )

    def resolve(self, host: str, port: int, *, timeout: float | None = None) -> list[str]:
        """The addresses to connect to for ``host:port``, all checked; raises ``DestinationRefused``
        if any is refused (a name that also resolves to an internal address is not trusted) and
        ``LookupFailed`` when it does not resolve in ``timeout`` seconds."""
        literal = _literal_address(host)
        if literal is not None:
            self.check_address(host, literal, port)
            return [str(literal)]
        timeout = DEFAULT_LOOKUP_TIMEOUT if timeout is None else timeout
        infos = _lookup(host, port, timeout)
        sockaddrs: list[str] = []
        for info in infos:
            raw = str(info[4][0])
            self.check_address(host, ipaddress.ip_address(raw.split("%", 1)[0]), port)
            if raw not in sockaddrs:
                sockaddrs.append(raw)
        if not sockaddrs:
            raise LookupFailed(f"The host {host!r} has no address.")
        return sockaddrs

    def check_url(self, url: str, *, lookup_timeout: float = SAVE_LOOKUP_TIMEOUT) -> None:
        """The save-time check of a configured URL: http(s) only; a literal address must be allowed,
        and so must every address a name resolves to now. A name that does not resolve (yet, or
        only from the workers' network) passes: the guard checks it again at each call."""
        host, port = url_destination(url)
        try:
            self.resolve(host, port, timeout=lookup_timeout)
        except LookupFailed:
            pass


def system_lookup(host: str, port: int) -> list:
    """The system resolver's TCP answers for ``host:port`` (``getaddrinfo``)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _lookup(host: str, port: int, timeout: float):
    """``system_lookup`` bounded by ``timeout`` (the system resolver has no timeout of its own).

    Each lookup has a daemon thread of its own: ``getaddrinfo`` cannot be cancelled, so a thread given
    up on stays blocked until the resolver's own timeout. In a shared pool a few names whose name
    server drops queries (any editor can save a tool or provider with such a name) would fill it and
    make every organisation's calls wait; here they only cost their own threads."""
    lookup: Future = Future()

    def resolve() -> None:
        try:
            lookup.set_result(system_lookup(host, port))
        except BaseException as exc:  # handed to the caller below
            lookup.set_exception(exc)

    threading.Thread(target=resolve, name="outbound-dns", daemon=True).start()
    try:
        return lookup.result(timeout=max(0.001, timeout))
    except FutureTimeout:
        raise LookupFailed(f"Resolving the host {host!r} took longer than {timeout:g} s.", timed_out=True)
    except (OSError, UnicodeError) as exc:
        raise LookupFailed(f"Cannot resolve the host {host!r}: {exc}.")


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def url_destination(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; raises ``DestinationRefused`` for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"Not a valid URL: {exc}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("Only http:// and https:// URLs with a host can be reached.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def http_tool_policy() -> OutboundPolicy:
    return OutboundPolicy.from_setting("HTTP_TOOL_ALLOWED_HOSTS", "PRISMA_GLOW_HTTP_TOOL_ALLOWED_HOSTS")


def provider_policy() -> OutboundPolicy:
    return OutboundPolicy.from_setting("PROVIDER_ALLOWED_HOSTS", "PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS")


ALLOW_LISTS = {
    "HTTP_TOOL_ALLOWED_HOSTS": "PRISMA_GLOW_HTTP_TOOL_ALLOWED_HOSTS",
    "PROVIDER_ALLOWED_HOSTS": "PRISMA_GLOW_PROVIDER_ALLOWED_HOSTS",
}


# --- Pinned connections ---------------------------------------------------------------------------


class GuardedBackend(httpcore2.SyncBackend):
    """httpcore's network backend with the guard in front of every TCP connection: the host is
    resolved and checked here and the socket goes to a checked address; TLS still verifies the
    certificate against the URL's host name (httpcore passes it as the server name)."""

    def __init__(self, policy: OutboundPolicy):
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            addresses = self.policy.resolve(host, port, timeout=timeout)
        except LookupFailed as exc:
            raise (httpcore2.ConnectTimeout if exc.timed_out else httpcore2.ConnectError)(str(exc)) from exc
        error: Exception | None = None
        for address in addresses:
            remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never configured
        raise DestinationRefused("Unix sockets are not allowed by the outbound policy.")


class GuardedTransport(httpx2.HTTPTransport):
    """An httpx transport whose every connection goes through ``GuardedBackend``. No proxy and no
    environment settings: a proxy would be the checked destination instead of the real one."""

    def __init__(self, policy: OutboundPolicy, **kwargs: Any):
        if kwargs.get("proxy") or kwargs.get("uds"):
            raise ValueError("The outbound guard cannot check calls made through a proxy or a socket.")
        kwargs.setdefault("trust_env", False)
        super().__init__(**kwargs)
        pool = self._pool
        if not isinstance(pool, httpcore2.ConnectionPool):  # pragma: no cover - httpx changed
            raise ImproperlyConfigured("The outbound guard needs httpx's direct connection pool.")
        # httpx's transport takes no backend argument; its pool reads this at each new connection.
        pool._network_backend = GuardedBackend(policy)
        self.policy = policy


def guarded_client(policy: OutboundPolicy, **kwargs: Any) -> httpx2.Client:
    """An ``httpx2.Client`` (no environment proxies) whose connections all go through the guard."""
    return httpx2.Client(transport=GuardedTransport(policy), trust_env=False, **kwargs)


__all__ = [
    "AllowEntry",
    "DestinationRefused",
    "GuardedBackend",
    "GuardedTransport",
    "LookupFailed",
    "OutboundError",
    "OutboundPolicy",
    "address_kind",
    "embedded_ipv4",
    "guarded_client",
    "http_tool_policy",
    "parse_entry",
    "provider_policy",
    "system_lookup",
    "url_destination",
]
