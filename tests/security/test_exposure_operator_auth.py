"""Safe exposure by default: the internal and admin listeners (issue 12, point 4).

The internal listener binds loopback unless configured; bound anywhere else it needs an operator
bearer token (and refuses to start without one). The admin listener's /config and /cache/purge
always need one; /metrics, /healthz and /readyz stay open for Prometheus and probes.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from gateway.config import load_config
from tests.support.fake_upstream import fake_upstream
from tests.support.gateway import (
    OPERATOR_AUTH,
    OPERATOR_HEADERS,
    OPERATOR_TOKEN,
    gateway_config,
    gateway_process,
)

ROOT = Path(__file__).parents[2]
WRONG_TOKEN = "wrong-operator-token-0123456789abcdef"
WRONG_HEADERS = {"Authorization": f"Bearer {WRONG_TOKEN}"}


def _config(tmp_path: Path, endpoint: str, **top: Any) -> dict[str, Any]:
    route = {"name": "echo", "listener": "internal", "prefix": "/echo", "cluster": "mes", "cache": {"ttl": 5}}
    cfg = gateway_config(tmp_path, clusters={"mes": {"endpoints": [endpoint], "retry": {"attempts": 0}}},
                         routes=[route], operator_auth=OPERATOR_AUTH, **top)
    cfg["cache"] = {"backend": "memory"}
    return cfg


def _start_and_wait(cfg: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``python -m gateway`` on ``cfg``; one that starts instead of refusing fails at the timeout."""
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=20)


def test_internal_listener_binds_loopback_by_default(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump({"listeners": {"internal": {"port": 8081}},
                                    "clusters": {"mes": {"endpoints": ["http://127.0.0.1:1"]}}}))
    assert load_config(path).listeners["internal"].host == "127.0.0.1"
    shipped = load_config(ROOT / "config" / "gateway.yaml", env={})  # no GATEWAY_INTERNAL_HOST set
    assert shipped.listeners["internal"].host == "127.0.0.1"
    assert shipped.admin.host == "127.0.0.1"


def test_internal_listener_beyond_loopback_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "http://127.0.0.1:1")
    del cfg["operator_auth"]
    cfg["listeners"]["internal"]["host"] = "0.0.0.0"
    done = _start_and_wait(cfg, tmp_path)
    assert done.returncode == 2
    assert "listeners.internal.host" in done.stderr
    assert "operator_auth.tokens" in done.stderr


async def test_internal_listener_beyond_loopback_needs_an_operator_token(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        cfg = _config(tmp_path, up.url)
        cfg["listeners"]["internal"]["host"] = "0.0.0.0"
        async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
            async with s.get(f"{gw.admin}/metrics") as resp:
                before = await resp.text()
            async with s.get(f"{gw.internal}/echo") as resp:
                missing = (resp.status, resp.headers, await resp.json(content_type=None))
            async with s.get(f"{gw.internal}/echo", headers=WRONG_HEADERS) as resp:
                wrong = (resp.status, resp.headers, await resp.json(content_type=None))
            async with s.get(f"{gw.internal}/echo", headers=OPERATOR_HEADERS) as resp:
                right = resp.status
            async with s.get(f"{gw.admin}/metrics") as resp:
                after = await resp.text()
    assert 'gateway_operator_auth_failures_total{listener="internal",reason="missing"} 0.0' in before
    for status, headers, problem in (missing, wrong):
        assert status == 401
        assert headers["Content-Type"].startswith("application/problem+json")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert problem["status"] == 401
        assert problem["instance"] == f"urn:request:{headers['X-Request-ID']}"
    assert 'error="invalid_token"' in wrong[1]["WWW-Authenticate"]
    assert right == 200
    assert up.hits == 1  # the refused requests never reached the endpoint
    assert 'gateway_operator_auth_failures_total{listener="internal",reason="missing"} 1.0' in after
    assert 'gateway_operator_auth_failures_total{listener="internal",reason="invalid"} 1.0' in after
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert WRONG_TOKEN not in logs
    assert OPERATOR_TOKEN not in logs


async def test_admin_config_upstreams_and_cache_purge_need_an_operator_token(tmp_path: Path) -> None:
    async with fake_upstream() as up, gateway_process(_config(tmp_path, up.url), tmp_path) as gw, \
            aiohttp.ClientSession() as s:
        refused = []
        for sent in ({}, WRONG_HEADERS):
            for path in ("/config", "/upstreams"):
                async with s.get(f"{gw.admin}{path}", headers=sent) as resp:
                    refused.append((resp.status, resp.headers))
            async with s.post(f"{gw.admin}/cache/purge", params={"route": "echo"}, headers=sent) as resp:
                refused.append((resp.status, resp.headers))
        async with s.get(f"{gw.admin}/config", headers=OPERATOR_HEADERS) as resp:
            config_status = resp.status
        async with s.post(f"{gw.admin}/cache/purge", params={"route": "echo"},
                          headers=OPERATOR_HEADERS) as resp:
            purge_status = resp.status
        open_statuses = []
        for path in ("/metrics", "/healthz", "/readyz"):
            async with s.get(f"{gw.admin}{path}") as resp:
                open_statuses.append(resp.status)
        async with s.get(f"{gw.admin}/metrics") as resp:
            metrics = await resp.text()
    for status, headers in refused:
        assert status == 401
        assert headers["Content-Type"].startswith("application/problem+json")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert headers["X-Request-ID"]  # the problem's instance names it, as on the other listeners
    assert (config_status, purge_status) == (200, 200)
    assert open_statuses == [200, 200, 200]
    assert 'gateway_operator_auth_failures_total{listener="admin",reason="missing"} 3.0' in metrics
    assert 'gateway_operator_auth_failures_total{listener="admin",reason="invalid"} 3.0' in metrics


async def test_admin_config_is_refused_when_no_operator_token_is_configured(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        cfg = _config(tmp_path, up.url)
        del cfg["operator_auth"]
        async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s, \
                s.get(f"{gw.admin}/config", headers=OPERATOR_HEADERS) as resp:
            status, problem = resp.status, await resp.json(content_type=None)
    assert status == 401
    assert "operator_auth.tokens" in problem["detail"]


async def test_operator_tokens_rotate_with_a_sighup_reload(tmp_path: Path) -> None:
    new_token = "rotated-operator-token-0123456789abcdef"
    async with fake_upstream() as up:
        cfg = _config(tmp_path, up.url)
        async with gateway_process(cfg, tmp_path) as gw, aiohttp.ClientSession() as s:
            assert gw.proc is not None
            gw.config_path.write_text(yaml.safe_dump({**cfg, "operator_auth": {"tokens": new_token}}))
            gw.proc.send_signal(signal.SIGHUP)
            async with asyncio.timeout(10):  # the reload is counted once applied
                while True:
                    async with s.get(f"{gw.admin}/metrics") as resp:
                        if 'gateway_config_reloads_total{outcome="success"} 1.0' in await resp.text():
                            break
                    await asyncio.sleep(0.05)
            async with s.get(f"{gw.admin}/config", headers=OPERATOR_HEADERS) as resp:
                old = resp.status
            async with s.get(f"{gw.admin}/config", headers={"Authorization": f"Bearer {new_token}"}) as resp:
                new = resp.status
    assert (old, new) == (401, 200)
