"""API-key auth through the real gateway: 401/403 paths, scopes, revocation, keys never logged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest

from gateway.auth.api_keys import ApiKeyStore
from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import run_gateway
from tests.support.partner_edge import ECHO_PATH, PEPPER, make_keys, partner_echo_config

pytestmark = pytest.mark.timeout(60)


def _cfg(tmp_path: Path, upstream: str, store: Path) -> dict[str, object]:
    return partner_echo_config(
        tmp_path, upstream, store,
        route={"methods": ["GET", "POST"],
               "auth": {"scopes": {"GET": ["orders:read"], "POST": "orders:write"}}},
        extra_routes=({"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes"},))


async def test_auth_paths_answer_401_403_or_proxy_without_forwarding_the_key(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, (reader, writer) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)),
                                        ("acme", "gold", ("orders:read", "orders:write")))
    caplog.set_level(logging.DEBUG)
    async with fake_upstream() as up, run_gateway(_cfg(tmp_path, up.url, store), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        url = f"{gw.external}{ECHO_PATH}"
        async with s.get(url) as r:
            assert r.status == 401
            assert r.content_type == "application/problem+json"
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="mes-edge"'
            assert (await r.json())["type"].endswith("/unauthorized")
        bogus = reader[:-4] + "AAAA"
        for headers in ({"Authorization": f"Bearer {bogus}"}, {"X-API-Key": "mes_nope_" + "x" * 30},
                        {"Authorization": f"Basic {reader}"}):
            async with s.get(url, headers=headers) as r:
                assert r.status == 401, headers
                assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        async with s.post(url, json={}, headers={"X-API-Key": reader}) as r:
            assert r.status == 403
            assert (await r.json())["missing_scopes"] == ["orders:write"]
        async with s.get(url, headers={"Authorization": f"Bearer {reader}"}) as r:
            assert r.status == 200
            forwarded = {k.lower() for k in (await r.json())["headers"]}
            assert not forwarded & {"authorization", "x-api-key"}
        async with s.post(url, json={}, headers={"X-API-Key": writer}) as r:
            assert r.status == 200
        async with s.get(f"{gw.internal}/echo") as r:  # internal routes need no key by default
            assert r.status == 200
    logged = caplog.text + "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "api key refused" in caplog.text  # the refusals were logged …
    for secret in (reader, writer, bogus, reader.split("_", 2)[2]):
        assert secret not in logged  # … but never a key


async def test_revoked_key_is_refused_within_a_second_without_restart(tmp_path: Path) -> None:
    store_path, (key,) = make_keys(tmp_path, ("acme", "gold", ("orders:read",)))
    async with fake_upstream() as up, run_gateway(_cfg(tmp_path, up.url, store_path), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        url = f"{gw.external}{ECHO_PATH}"
        async with s.get(url, headers={"X-API-Key": key}) as r:
            assert r.status == 200
        ApiKeyStore(store_path, PEPPER.encode()).revoke(key.split("_")[1])
        async with asyncio.timeout(5):
            while True:
                async with s.get(url, headers={"X-API-Key": key}) as r:
                    if r.status == 401:
                        assert (await r.json())["detail"] == "The API key has been revoked."
                        break
                await asyncio.sleep(0.1)
