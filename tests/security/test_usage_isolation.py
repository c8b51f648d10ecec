"""A partner reads only its own usage: no parameter, header or path names another partner, and
the operators' export needs an operator token even on loopback (real gateway, real Redis)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.gateway import OPERATOR_AUTH, OPERATOR_HEADERS, gateway_config, run_gateway
from tests.support.partner_edge import api_keys_section, make_keys
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


async def test_a_partner_never_reads_another_partners_usage(tmp_path: Path, redis_url: str) -> None:
    store, (acme, globex) = make_keys(tmp_path, ("acme", "gold", ()), ("globex", "gold", ()))
    cfg = gateway_config(
        tmp_path, clusters={"mes": {"endpoints": ["http://127.0.0.1:9"]}},
        routes=[{"name": "partner-usage", "listener": "external", "prefix": "/partner/v1/usage",
                 "methods": ["GET"], "handler": "usage"}],
        api_keys=api_keys_section(store), operator_auth=OPERATOR_AUTH,
        usage={"redis_url": redis_url, "flush_interval": 0.05})
    day = dt.datetime.now(dt.UTC).date().isoformat()
    rng = {"from": day, "to": day}
    async with run_gateway(cfg, tmp_path, ready=False) as gw, aiohttp.ClientSession() as s:
        url = f"{gw.external}/partner/v1/usage"

        async def read(key: str, **extra: Any) -> aiohttp.ClientResponse:
            params = {**rng, **extra.pop("params", {})}
            r = await s.get(extra.pop("url", url), params=params, headers={"X-API-Key": key, **extra})
            await r.read()
            return r

        for _ in range(10):  # globex uses the API; acme must never see it
            await read(globex)

        async def globex_counted() -> bool:
            r = await read(globex)
            return bool((await r.json())["totals"]["requests"] >= 10)
        await eventually(globex_counted, timeout=10, what="globex's usage flushed")

        r = await read(acme, params={"partner_id": "globex"})  # not a parameter of the operation
        assert r.status == 400
        assert [p["pointer"] for p in (await r.json())["invalid_params"]] == ["/partner_id"]
        for headers in ({"X-Partner-Id": "globex"}, {"Forwarded": "for=x;partner=globex"}):
            r = await read(acme, **headers)
            body = await r.json()
            assert r.status == 200
            assert body["partner_id"] == "acme"
            assert body["totals"]["requests"] <= 3  # acme's own reads only, never globex's 10+
        for path in ("/partner/v1/usage/globex", "/partner/v1/usage/acme/../globex"):
            r = await read(acme, url=f"{gw.external}{path}")
            assert r.status == 404
        r = await s.get(url, params=rng)  # no key: nobody's usage
        assert r.status == 401
        r = await s.get(f"{gw.internal}/partner/v1/usage", params=rng, headers={"X-API-Key": globex})
        assert r.status == 404  # the internal listener has no partner routes
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": globex}):
            r = await s.get(f"{gw.admin}/usage/export", params=rng, headers=headers)
            assert r.status == 401, headers
        r = await s.get(f"{gw.admin}/usage/export", params=rng, headers=OPERATOR_HEADERS)
        assert r.status == 200
