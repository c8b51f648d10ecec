"""Pre-auth throttle: failed API-key attempts per client address, checked before the key lookup.

A token bucket per address: ``failures`` tokens, refilled at ``failures / seconds`` per second;
every refused attempt (401: missing, invalid or revoked key) takes one. An address without a
token is answered 429 before its key is looked at, until a token has grown back — so a flood of
bad keys costs a dictionary lookup, not a key lookup + HMAC + log line each, and guessing runs
at ``failures / seconds`` per address at most. Successful requests take nothing: a partner
is limited by its own quota (``gateway.ratelimit``), never by its address.

The address is the TCP peer (never ``X-Forwarded-For``); IPv6 peers count per /64 (one
subscriber's allocation, as Cloudflare and most rate limiters do), IPv4-mapped IPv6 as the IPv4
address. The table is an LRU of at most ``max_addresses`` entries: many addresses cannot grow
memory, they only evict each other. Per worker process, in memory (see ``docs/partner-edge.md``).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from typing import Any


def client_address(peername: Any) -> str:
    """The throttle key of a transport's ``peername``: IPv4 address, IPv6 /64, or ``unknown``."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return "unknown"  # a Unix socket: one local client
    host = peername[0]
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class AddressThrottle:
    """``wait(address, now)`` before the key lookup, ``failure(address, now)`` after a 401."""

    def __init__(self, *, failures: int, seconds: float, max_addresses: int) -> None:
        self.capacity = float(failures)
        self.rate = failures / seconds  # tokens per second
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # address → [tokens, at]

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0.0: go ahead)."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        if tokens >= self.capacity:  # recovered: forget it (keeps the table small and the check free)
            del self._buckets[address]
            return 0.0
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def failure(self, address: str, now: float) -> bool:
        """Take a token for a refused attempt; True when this left the address without one."""
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.max_addresses:
                self._buckets.popitem(last=False)  # least recently failed
            bucket = self._buckets[address] = [self.capacity, now]
        else:
            self._buckets.move_to_end(address)
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate) - 1.0
        bucket[0], bucket[1] = tokens, now
        return tokens < 1.0
