"""Webhook targets: only public addresses, checked at submit and at connect time (no SSRF)."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from legacy_adapters.callback_guard import (
    CallbackRefused,
    PublicOnlyResolver,
    check_callback_url,
    is_public_address,
)


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True),
    ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False),
    ("10.0.0.5", False),
    ("172.16.3.4", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),       # cloud metadata
    ("100.64.0.1", False),            # carrier-grade NAT
    ("0.0.0.0", False),
    ("224.0.0.1", False),             # multicast
    ("::1", False),
    ("fe80::1", False),
    ("fd00::1", False),
    ("::ffff:10.0.0.5", False),       # IPv4-mapped private
    ("::ffff:93.184.216.34", True),
    ("not-an-ip", False),
])
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize("url", [
    "https://hooks.partner.example/quotes",
    "http://93.184.216.34:8080/hook",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
])
def test_public_callbacks_pass(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://partner.example/x", "absolute http"),
    ("/relative/hook", "absolute http"),
    ("http://user:pw@partner.example/", "credentials"),
    ("http://partner.example:99999/", "invalid port"),
    ("http://localhost:8080/", "not a public address"),
    ("http://LOCALHOST./", "not a public address"),
    ("http://127.0.0.1/", "not a public address"),
    ("http://10.1.2.3/admin", "not a public address"),
    ("http://169.254.169.254/latest/meta-data/", "not a public address"),
    ("http://[::1]:9901/config", "not a public address"),
    ("http://[::ffff:192.168.0.1]/", "not a public address"),
])
def test_private_or_malformed_callbacks_are_refused(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        check_callback_url(url)


def test_allow_private_lets_internal_receivers_through_but_not_garbage() -> None:
    assert check_callback_url("http://127.0.0.1:9000/hook", allow_private=True)
    with pytest.raises(CallbackRefused):
        check_callback_url("gopher://127.0.0.1/", allow_private=True)


class StaticResolver(AbstractResolver):
    """Answers from a table, like a DNS server that can be re-pointed (rebinding)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=ip, port=port, family=family, proto=0,
                              flags=socket.AI_NUMERICHOST) for ip in self.table[host]]

    async def close(self) -> None:
        pass


async def test_resolver_drops_private_addresses_and_refuses_when_none_is_left() -> None:
    table = {"partner.example": ["10.0.0.5", "93.184.216.34"]}
    resolver = PublicOnlyResolver(StaticResolver(table))
    assert [r["host"] for r in await resolver.resolve("partner.example", 443)] == ["93.184.216.34"]
    table["partner.example"] = ["10.0.0.5"]  # re-pointed after the job was submitted
    with pytest.raises(OSError, match="no public address"):
        await resolver.resolve("partner.example", 443)


async def test_real_resolution_of_a_loopback_name_is_refused() -> None:
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="no public address"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
