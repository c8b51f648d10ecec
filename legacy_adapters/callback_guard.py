"""Webhook targets must be public: no SSRF into the plant network through ``callback_url``.

A partner chooses the URL our workers POST to. Without a guard, ``http://10.0.0.5/admin`` or
``http://169.254.169.254/latest/meta-data`` would make the worker an open proxy into the
internal network. Two checks, as Envoy's/Smokescreen's egress guards do:

* at submit time (the gateway) and again before each delivery: an IP-literal host, or
  ``localhost``, must be a *global* address (``ipaddress.is_global``: not private, loopback,
  link-local, shared 100.64/10, reserved, documentation, multicast ...), and an IPv6 literal
  that carries an IPv4 address (IPv4-mapped/compatible, SIIT, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``, Teredo) only if that IPv4 address is global too;
* at delivery time, for host names: ``PublicOnlyResolver`` drops every non-global address the
  name resolves to, *at connect time* -- a name that resolved to a public address when the job
  was submitted and to 10.0.0.5 now (DNS rebinding) is refused all the same.

Redirects are never followed. ``allow_private=True`` switches both off (tests, ``make run``, a
receiver inside the plant network on purpose).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

__all__ = ["CallbackRefused", "PublicOnlyResolver", "check_callback_url", "embedded_ipv4",
           "is_public_address"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class CallbackRefused(ValueError):
    """The callback URL is malformed or points at a non-public address."""


_V4_IN_V6 = (  # prefixes whose low 32 bits are an IPv4 address the packet may end up at
    ipaddress.IPv6Network("::/96"),            # IPv4-compatible (deprecated, RFC 4291 2.5.5.1): ::7f00:1
    ipaddress.IPv6Network("::ffff:0:0/96"),    # IPv4-mapped: ::ffff:127.0.0.1
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765): ::ffff:0:127.0.0.1
    ipaddress.IPv6Network("64:ff9b::/96"),     # NAT64 well-known prefix (RFC 6052): 64:ff9b::10.0.0.5
)
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215): internal by definition


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a v6 address carries (mapped, compatible, SIIT, NAT64, 6to4, Teredo).

    A NAT64 gateway, a 6to4 relay or a dual-stack kernel turns such a destination into the
    embedded IPv4 address, so ``64:ff9b::10.0.0.5`` is ``10.0.0.5`` for SSRF purposes.
    """
    found: list[ipaddress.IPv4Address] = []
    if any(ip in net for net in _V4_IN_V6):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    return found


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast IP address whose embedded IPv4 (if any) is public too.

    ``ipaddress.is_global`` alone calls ``::7f00:1`` (IPv4-compatible loopback) and
    ``64:ff9b::a00:5`` (NAT64 of 10.0.0.5) global: every IPv4 address carried inside a v6 one
    is checked as well, and the unspecified/loopback v6 forms and local-use NAT64 are refused.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL or ip.is_unspecified or ip.is_loopback:
            return False
        inner = embedded_ipv4(ip)
        if inner:
            return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return ip.is_global and not ip.is_multicast


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def check_callback_url(url: str, *, allow_private: bool = False) -> str:
    """Return ``url`` if it is an absolute http(s) URL whose host may be a public address.

    Raises ``CallbackRefused`` naming the reason. Host names other than ``localhost`` pass
    here; ``PublicOnlyResolver`` checks what they resolve to when the webhook is sent.
    """
    if not url.isascii():
        # IDNA would map fullwidth or ideographic digits and dots (U+FF11, U+3002 ...) to an IP literal
        # that aiohttp connects to without asking a resolver: international names go as punycode
        raise CallbackRefused("callback_url: must be ASCII (write international host names in punycode)")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise CallbackRefused("callback_url: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url: must be an absolute http(s) URL")
    if "%" in parts.hostname:
        raise CallbackRefused("callback_url: percent-encoded host names are not accepted")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url: must not carry credentials")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise CallbackRefused("callback_url: invalid port") from None
    try:
        client_host = URL(url).host  # the host exactly as the webhook client will use it
    except ValueError:
        raise CallbackRefused("callback_url: not a valid URL") from None
    if not client_host:
        raise CallbackRefused("callback_url: must be an absolute http(s) URL")
    if allow_private:
        return url
    for name in {parts.hostname, client_host}:
        host = name.lower().rstrip(".")
        literal = _ip_literal(host)
        if host in _LOCAL_NAMES or (literal is not None and not is_public_address(literal)):
            raise CallbackRefused(f"callback_url: host {host!r} is not a public address")
    return url


class PublicOnlyResolver(AbstractResolver):
    """aiohttp resolver that returns only global addresses; none left → ``OSError``."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if is_public_address(r["host"])]
        if not public:
            # errno + strerror: aiohttp's ClientConnectorDNSError shows strerror
            raise OSError(errno.EHOSTUNREACH, f"{host} resolves to no public address (callback refused)")
        return public

    async def close(self) -> None:
        await self._inner.close()

