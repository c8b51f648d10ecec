"""Requests without a valid API key are throttled per client address before auth; refusal logs are sampled.

Attack: a flood of bad keys (key guessing, or just log flooding) cost a key lookup, an HMAC and
a log line each, without limit. Now each TCP peer address has a budget of refused attempts
(default 30 per minute, per worker); beyond it the answer is 429 before the key is looked at,
``X-Forwarded-For`` does not change the address, the table of addresses is bounded, and the
refusal log is sampled (first lines per reason and interval, then one summary line).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import GatewayUnderTest, gateway_process
from tests.support.partner_edge import ECHO_PATH, make_keys, partner_echo_config

pytestmark = pytest.mark.timeout(90)
BUDGET = 30  # the documented default: 30 refused attempts per minute and address
BAD_KEY = "mes_0123456789ab_" + "x" * 43  # well-formed, unknown key id


def _cfg(tmp_path: Path, upstream: str, store: Path, **api_keys: Any) -> dict[str, Any]:
    cfg = partner_echo_config(tmp_path, upstream, store, route={"ratelimit": False})
    cfg["api_keys"].update(api_keys)
    return cfg


def _client(source: str) -> aiohttp.ClientSession:
    """A client whose connections come from ``source`` (any 127.0.0.0/8 address reaches loopback)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def _get(s: aiohttp.ClientSession, gw: GatewayUnderTest, key: str | None,
               **headers: str) -> aiohttp.ClientResponse:
    if key is not None:
        headers["X-API-Key"] = key
    async with s.get(f"{gw.external}{ECHO_PATH}", headers=headers) as r:
        await r.read()
        return r


async def _metric(gw: GatewayUnderTest, sample: str) -> float | None:
    """The sample's value, None when it is not exported."""
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/metrics") as r:
        text = await r.text()
    line = next((ln for ln in text.splitlines() if ln.startswith(sample + " ")), None)
    return float(line.rsplit(" ", 1)[1]) if line is not None else None


async def test_refused_attempts_beyond_an_addresss_budget_get_429_before_the_key_lookup(
        tmp_path: Path) -> None:
    store, (key,) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
    async with fake_upstream() as up, gateway_process(_cfg(tmp_path, up.url, store), tmp_path) as gw:
        throttled = 'gateway_auth_throttled_total{listener="external"}'
        at_start = await _metric(gw, throttled)  # asserted at the end (the behaviour first)
        async with _client("127.0.0.1") as s:
            for _ in range(2 * BUDGET):  # successes never count against the address
                assert (await _get(s, gw, key)).status == 200
            for i in range(BUDGET):  # a fresh spoofed X-Forwarded-For each time changes nothing
                r = await _get(s, gw, BAD_KEY if i % 2 else None, **{"X-Forwarded-For": f"203.0.113.{i}"})
                assert r.status == 401, i
            refused = await _metric(gw, 'gateway_auth_failures_total{listener="external",reason="invalid"}')
            for presented in (BAD_KEY, None, key):  # budget used up: even a good key waits
                r = await _get(s, gw, presented, **{"X-Forwarded-For": "198.51.100.7"})
                assert r.status == 429, presented
                assert r.content_type == "application/problem+json"
                assert 1 <= int(r.headers["Retry-After"]) <= 60
                assert "WWW-Authenticate" not in r.headers
            async with s.get(f"{gw.external}{ECHO_PATH}") as r:
                body = await r.json(content_type=None)
                assert body["type"].endswith("/auth-attempts-exceeded")
                assert body["instance"] == f"urn:request:{r.headers['X-Request-ID']}"
        # no key lookup happened for the throttled requests: they are not refusals, they are counted apart
        invalid = 'gateway_auth_failures_total{listener="external",reason="invalid"}'
        assert await _metric(gw, invalid) == refused
        assert at_start == 0  # exported at 0 from start-up (an alert can read it)
        assert await _metric(gw, throttled) == 4
        async with _client("127.0.0.2") as other:  # another address keeps its own budget
            assert (await _get(other, gw, BAD_KEY)).status == 401
            assert (await _get(other, gw, key)).status == 200


async def test_address_table_is_bounded_least_recently_failed_address_forgotten_first(
        tmp_path: Path) -> None:
    store, _ = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
    cfg = _cfg(tmp_path, "", store, failures={"limit": "2/minute", "max_addresses": 3})
    async with fake_upstream() as up:
        cfg["clusters"]["mes"]["endpoints"] = [up.url]
        async with gateway_process(cfg, tmp_path) as gw:
            async with _client("127.0.0.2") as s:
                assert [(await _get(s, gw, BAD_KEY)).status for _ in range(3)] == [401, 401, 429]
            for n in (3, 4, 5):  # three more addresses fail once: the table holds 3, 127.0.0.2 is evicted
                async with _client(f"127.0.0.{n}") as s:
                    assert (await _get(s, gw, BAD_KEY)).status == 401
            async with _client("127.0.0.2") as s:
                assert (await _get(s, gw, BAD_KEY)).status == 401  # a fresh budget: it was forgotten
            async with _client("127.0.0.5") as s:  # the most recent ones are still tracked
                assert [(await _get(s, gw, BAD_KEY)).status for _ in range(2)] == [401, 429]


def _app_log(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "gateway.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _accounted(records: list[dict[str, Any]]) -> tuple[int, int]:
    """(refusals logged one by one, refusals reported by summary lines)."""
    lines = sum(1 for rec in records if rec.get("event.action") == "auth-failure")
    summed = sum(rec["gateway.suppressed"] for rec in records
                 if rec.get("event.action") == "auth-failure-summary" and rec["event.reason"] == "invalid")
    return lines, summed


@pytest.mark.slow
async def test_refusal_log_is_sampled_with_a_summary_line_while_the_metric_counts_every_refusal(
        tmp_path: Path) -> None:
    store, _ = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
    per_address, addresses = 25, 4  # 100 refusals, each address inside its budget
    total = per_address * addresses
    async with fake_upstream() as up, gateway_process(_cfg(tmp_path, up.url, store), tmp_path) as gw:
        started = time.monotonic()
        for n in range(2, 2 + addresses):
            async with _client(f"127.0.0.{n}") as s:
                for _ in range(per_address):
                    assert (await _get(s, gw, BAD_KEY)).status == 401
        sent_within = time.monotonic() - started
        assert await _metric(gw, 'gateway_auth_failures_total{listener="external",reason="invalid"}') == total
        async with asyncio.timeout(30):  # summaries come when a sampling interval (10 s) ends
            while sum(_accounted(_app_log(tmp_path))) < total:
                await asyncio.sleep(0.2)
    lines, summarised = _accounted(_app_log(tmp_path))
    assert lines + summarised == total  # every refusal is either a line or in a summary's count
    assert 1 <= lines <= 10 * (1 + int(sent_within // 10))  # 10 lines per reason and 10 s interval
