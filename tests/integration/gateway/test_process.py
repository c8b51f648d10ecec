"""`python -m gateway` as real processes: drain on SIGTERM, SIGHUP reload, several workers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.fake_upstream import FakeUpstream, fake_upstream
from tests.support.gateway import gateway_config, gateway_process

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with fake_upstream() as up:
        yield up


def config(tmp_path: Path, up: FakeUpstream, **route_extra: Any) -> dict[str, Any]:
    return gateway_config(
        tmp_path, drain_timeout=10,
        clusters={"mes": {"endpoints": [up.url], "health_check": {"path": "/healthz", "interval": 0.5}}},
        routes=[{"name": "slow", "listener": "internal", "prefix": "/slow", "cluster": "mes"},
                {"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes", **route_extra}])


async def test_sigterm_drains_in_flight_requests(tmp_path: Path, upstream: FakeUpstream) -> None:
    async with gateway_process(config(tmp_path, upstream), tmp_path) as gw, aiohttp.ClientSession() as s:
        assert gw.proc is not None
        in_flight = asyncio.create_task(s.get(f"{gw.internal}/slow?seconds=1.5"))
        while upstream.hits_by_path["/slow"] == 0:  # the request reached the upstream
            await asyncio.sleep(0.02)
        gw.proc.send_signal(signal.SIGTERM)
        resp = await asyncio.wait_for(in_flight, timeout=10)
        assert resp.status == 200
        await asyncio.to_thread(gw.proc.wait, 15)
        assert gw.proc.returncode == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(f"{gw.internal}/echo")
    started = [json.loads(line) for line in (tmp_path / "gateway.log").read_text().splitlines()
               if "gateway listening" in line]
    assert started
    assert started[0]["gateway.gc_frozen_objects"] > 10_000  # start-up objects kept out of GC scans


async def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    cfg = config(tmp_path, upstream)
    async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
        assert gw.proc is not None
        async with s.get(f"{gw.internal}/new") as resp:
            assert resp.status == 404
        # a broken file: rejected, old routes keep working
        gw.config_path.write_text("routes: [ {name: x, cluster: nowhere")
        gw.proc.send_signal(signal.SIGHUP)
        await _wait_metric(s, gw.admin, 'gateway_config_reloads_total{outcome="rejected"} 1.0')
        async with s.get(f"{gw.internal}/echo") as resp:
            assert resp.status == 200
        # an invalid (well-formed) file: rejected too
        bad = {**cfg, "routes": [*cfg["routes"], {"name": "x", "listener": "internal", "prefix": "/x",
                                                   "cluster": "nowhere"}]}
        gw.config_path.write_text(yaml.safe_dump(bad))
        gw.proc.send_signal(signal.SIGHUP)
        await _wait_metric(s, gw.admin, 'gateway_config_reloads_total{outcome="rejected"} 2.0')
        # a good file with a new route: applied without a restart
        good = {**cfg, "routes": [*cfg["routes"], {"name": "new", "listener": "internal", "prefix": "/new",
                                                    "cluster": "mes", "rewrite_prefix": "/echo"}]}
        gw.config_path.write_text(yaml.safe_dump(good))
        gw.proc.send_signal(signal.SIGHUP)
        await _wait_metric(s, gw.admin, 'gateway_config_reloads_total{outcome="success"} 1.0')
        async with s.get(f"{gw.internal}/new") as resp:
            assert resp.status == 200
            assert (await resp.json())["path"] == "/echo"


async def test_two_workers_share_the_ports_and_metrics_add_up(tmp_path: Path, upstream: FakeUpstream) -> None:
    async with gateway_process(config(tmp_path, upstream), tmp_path, workers=2) as gw, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        pids, sent = set(), 0
        while sent < 40 or (len(pids) < 2 and sent < 400):  # the second worker may still be starting
            async with s.get(f"{gw.admin}/healthz") as resp:
                pids.add((await resp.json())["pid"])
            async with s.get(f"{gw.internal}/echo") as resp:
                assert resp.status == 200
            sent += 1
        assert len(pids) == 2, "both workers should accept connections (SO_REUSEPORT)"
        assert gw.proc is not None
        assert gw.proc.pid not in pids
        text = await (await s.get(f"{gw.admin}/metrics")).text()
        line = next(ln for ln in text.splitlines()
                    if ln.startswith("gateway_requests_total{") and 'route="echo"' in ln
                    and 'status_class="2xx"' in ln)  # the 5xx series exists too, at 0
        assert line.endswith(f" {sent}.0"), line  # every request counted, whichever worker took it


async def _wait_metric(s: aiohttp.ClientSession, admin: str, needle: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            async with s.get(f"{admin}/metrics") as resp:
                if needle in await resp.text():
                    return
            await asyncio.sleep(0.05)


def test_check_flag_names_the_bad_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump({"listeners": {"internal": {"port": 1}}, "clusters": {
        "mes": {"endpoints": ["http://127.0.0.1:1"]}}, "routes": [
        {"listener": "internal", "prefix": "/x", "cluster": "mes", "timeouts": {"per_tri": 1}}]}))
    done = subprocess.run([sys.executable, "-m", "gateway", "--config", str(path), "--check"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[3], timeout=30,
                          env={**os.environ})
    assert done.returncode == 2
    assert "routes[0].timeouts" in done.stderr
    assert "per_tri" in done.stderr
