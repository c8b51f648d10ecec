"""Webhook targets must be public: no SSRF into the plant network through ``callback_url``.

A partner chooses the URL our workers POST to. Without a guard, ``http://10.0.0.5/admin`` or
``http://169.254.169.254/latest/meta-data`` would make the worker an open proxy into the
internal network. Two checks, as Envoy's/Smokescreen's egress guards do:

* at submit time (the gateway) and again before each delivery: an IP-literal host, or
  ``localhost``, must be a *global* address (``ipaddress.is_global``: not private, loopback,
  link-local, shared 100.64/10, reserved, documentation, multicast ...);
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

__all__ = ["CallbackRefused", "PublicOnlyResolver", "check_callback_url", "is_public_address"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class CallbackRefused(ValueError):
    """The callback URL is malformed or points at a non-public address."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast IP address (v4 or v6, IPv4-mapped unwrapped)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url: must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url: must not carry credentials")
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise CallbackRefused("callback_url: invalid port") from None
    if allow_private:
        return url
    host = parts.hostname.lower().rstrip(".")
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

