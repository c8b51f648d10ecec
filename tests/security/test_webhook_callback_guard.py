"""Webhook SSRF guard: private IPv4 addresses hidden inside IPv6 forms are refused too
(issue 12, point 5; docs/security.md).

``ipaddress.is_global`` alone calls ``::7f00:1`` (IPv4-compatible loopback) and
``64:ff9b::a00:5`` (NAT64 of 10.0.0.5) global; a NAT64 gateway, a 6to4 relay or a dual-stack
kernel delivers them to the embedded private address. Black box: a real gateway process refuses
them at submit with 422 problem+json and queues nothing; the workers' connect-time resolver
drops a host name that resolves to any of them.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from legacy_adapters.callback_guard import PublicOnlyResolver
from legacy_sim.pricing.samples import box_stl_binary
from tests.support.gateway import GatewayUnderTest, gateway_config, gateway_process

STL = {"Content-Type": "model/stl"}
EMBEDDED_PRIVATE = [
    "::7f00:1",                 # IPv4-compatible 127.0.0.1
    "::a00:5",                  # IPv4-compatible 10.0.0.5
    "::ffff:127.0.0.1",         # IPv4-mapped loopback
    "::ffff:a9fe:a9fe",         # IPv4-mapped 169.254.169.254 (cloud metadata)
    "::ffff:0:a00:5",           # IPv4-translated (SIIT) 10.0.0.5
    "64:ff9b::7f00:1",          # NAT64 well-known prefix, 127.0.0.1
    "64:ff9b::a00:5",           # NAT64 of 10.0.0.5
    "64:ff9b::a9fe:a9fe",       # NAT64 of 169.254.169.254
    "64:ff9b:1::5db8:d822",     # local-use NAT64 (RFC 8215): internal by definition
    "2002:7f00:1::1",           # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",         # 6to4 of 192.168.1.1
    "2001:0:a00:5::f5ff:fffa",  # Teredo with server 10.0.0.5
]


@pytest.fixture
async def gateway(tmp_path: Path, redis_url: str) -> AsyncIterator[GatewayUnderTest]:
    cfg = gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "quotes", "listener": "internal", "prefix": "/quotes", "methods": ["GET", "POST"],
                 "handler": "quotes", "max_body_bytes": 4096}],
        quotes={"redis_url": redis_url, "allow_private_callbacks": False})
    async with gateway_process(cfg, tmp_path) as gw:
        yield gw


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
async def test_callback_to_an_ipv6_form_of_a_private_address_is_refused_at_submit(
        gateway: GatewayUnderTest, redis_url: str, address: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{gateway.internal}/quotes", data=box_stl_binary(2, 3, 4), headers=STL,
            params={"material": "PLA", "callback_url": f"http://[{address}]:8080/hook"}) as resp:
        assert resp.status == 422
        assert resp.content_type == "application/problem+json"
        problem = await resp.json(content_type=None)
    assert "not a public address" in problem["detail"]
    assert problem["instance"].startswith("urn:request:")


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34"])
async def test_callback_to_an_ipv6_form_of_a_public_address_is_accepted(
        gateway: GatewayUnderTest, address: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{gateway.internal}/quotes", data=box_stl_binary(2, 3, 5), headers=STL,
            params={"material": "PLA", "callback_url": f"http://[{address}]/hook"}) as resp:
        assert resp.status == 202


class _Dns(AbstractResolver):
    """A DNS answer we choose: the name resolves to ``addresses`` (AAAA records)."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET6, proto=0,
                              flags=socket.AI_NUMERICHOST) for a in self.addresses]

    async def close(self) -> None:
        pass


async def test_workers_resolver_drops_names_that_resolve_to_an_ipv6_form_of_a_private_address() -> None:
    resolver = PublicOnlyResolver(_Dns(EMBEDDED_PRIVATE))
    with pytest.raises(OSError, match="no public address"):
        await resolver.resolve("hooks.partner.example", 443, socket.AF_UNSPEC)
    mixed = PublicOnlyResolver(_Dns([*EMBEDDED_PRIVATE, "64:ff9b::5db8:d822"]))
    assert [r["host"] for r in await mixed.resolve("hooks.partner.example", 443)] == ["64:ff9b::5db8:d822"]


@pytest.mark.parametrize("url", [
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8080/hook",   # fullwidth digits: IDNA maps to 127.0.0.1
    "http://127\u30020\u30020\u30021:8080/hook",                 # ideographic full stops
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460:8080/hook",   # circled digits
    "http://%31%32%37.0.0.1:8080/hook",                           # percent-encoded host
])
async def test_callback_to_a_unicode_or_encoded_form_of_loopback_is_refused_at_submit(
        gateway: GatewayUnderTest, url: str) -> None:
    """aiohttp connects to an IDNA-mapped IP literal without asking the resolver: refuse at submit."""
    async with aiohttp.ClientSession() as s, s.post(
            f"{gateway.internal}/quotes", data=box_stl_binary(2, 3, 6), headers=STL,
            params={"material": "PLA", "callback_url": url}) as resp:
        assert resp.status == 422, await resp.text()
        assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("url", ["http://[::1", "http://a\uff0fb.example/", "http://exa mple.com:99999/"])
async def test_a_callback_url_that_does_not_parse_is_a_422_not_a_500(gateway: GatewayUnderTest,
                                                                     url: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(
            f"{gateway.internal}/quotes", data=box_stl_binary(2, 3, 7), headers=STL,
            params={"material": "PLA", "callback_url": url}) as resp:
        assert resp.status == 422, await resp.text()
        assert resp.content_type == "application/problem+json"
