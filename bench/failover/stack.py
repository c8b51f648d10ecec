"""The processes of a failover run, all on ephemeral loopback ports, stopped by PID.

Two gateway processes (``python -m gateway --workers 1``) share the Redis spec for their rate
limits and the quote API; the partner route goes to a static nginx endpoint; quote jobs are
priced by real ``python -m legacy_adapters.worker`` processes calling the MES stand-in (which
records every calculation in PostgreSQL's ``price_calculations``); CRM orders go into the CRM
stand-in and are relayed into the MES by a sidecar (``--relay-redis-url``).
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import nginx
from devstack.ports import free_port, wait_for_port
from devstack.postgres import PostgresServer
from devstack.process import ServerProcess, wait_ready
from gateway.auth.api_keys import ApiKeyStore

ROOT = Path(__file__).resolve().parents[2]
PEPPER = "bench-failover-pepper-0123456789"
BIG = {"burst": "1000000/second", "rate": "100000000/minute"}
WORKERS, WORKER_CONCURRENCY, PRICE_DELAY = 2, 4, 0.05
CRM_STREAMS = {"dead": "crm:orders:dead:{crm:orders}", "status": "crm:orders:status:{crm:orders}"}


@dataclass
class Gateway:
    """One gateway process and its URLs."""

    process: ServerProcess
    external: str
    admin: str


@dataclass
class Stack:
    """What the load and the checks talk to."""

    gateways: list[Gateway] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # role → API key
    crm: str = ""
    mes_dsn: str = ""


def _python(stack: ExitStack, workdir: Path, name: str, *argv: str, env: dict[str, str] | None = None
            ) -> ServerProcess:
    proc = ServerProcess([sys.executable, *argv], log_path=workdir / f"{name}.log",
                         env={**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", **(env or {})})
    proc.start()
    stack.callback(proc.stop, timeout=15)
    return proc


def _gateway_config(workdir: Path, spec: str, endpoint: str, tiers: dict[str, Any]) -> dict[str, Any]:
    return {
        "admin": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"access_log": str(workdir / "access.log"), "app_log": str(workdir / "gateway.log")},
        "listeners": {"external": {"host": "127.0.0.1", "port": free_port()},
                      "internal": {"host": "127.0.0.1", "port": free_port()}},
        "clusters": {"mes": {"endpoints": [endpoint]}},
        "api_keys": {"store": str(workdir.parent / "keys.json"), "pepper": PEPPER},
        "ratelimit": {"redis_url": spec, "default_tier": "big", "tiers": tiers, "socket_timeout": 0.2,
                      "heartbeat_interval": 0.2},
        "quotes": {"redis_url": spec, "prefix": "{pricing}", "backlog_bound": 100000, "probe_interval": 0.5,
                   "parse_workers": 1, "retry_after": 1},
        "routes": [
            {"name": "partner-orders", "listener": "external", "prefix": "/partner/v1/orders",
             "methods": ["GET"], "cluster": "mes", "rewrite_prefix": "/orders",
             "auth": {"scopes": {"GET": ["orders:read"]}}},
            {"name": "partner-quotes", "listener": "external", "prefix": "/partner/v1/quotes",
             "methods": ["GET", "POST"], "handler": "quotes", "max_body_bytes": 65536,
             "auth": {"scopes": {"GET": ["quotes:read"], "POST": ["quotes:write"]}}},
        ],
    }


def start_gateways(stack: ExitStack, workdir: Path, spec: str, endpoint: str, tiers: dict[str, Any],
                   count: int = 2) -> list[Gateway]:
    """``count`` gateway processes on one config (each its own ports and logs)."""
    gateways = []
    for i in range(count):
        folder = workdir / f"gateway-{i}"
        folder.mkdir(exist_ok=True)
        cfg = _gateway_config(folder, spec, endpoint, tiers)
        (folder / "gateway.yaml").write_text(yaml.safe_dump(cfg))
        proc = _python(stack, folder, "gateway", "-m", "gateway", "--config", str(folder / "gateway.yaml"),
                       "--workers", "1")
        admin = f"http://127.0.0.1:{cfg['admin']['port']}"
        gateways.append(Gateway(proc, f"http://127.0.0.1:{cfg['listeners']['external']['port']}", admin))
    for gw in gateways:
        wait_ready(f"{gw.admin}/readyz", gw.process, timeout=60)
    return gateways


def make_keys(workdir: Path, partner: str) -> dict[str, str]:
    """API keys: ``limited`` (the rate-limited partner, tier ``limited``) and ``quotes`` (tier big)."""
    store = ApiKeyStore(workdir / "keys.json", PEPPER.encode())
    return {"limited": store.create(partner=partner, tier="limited", scopes=("orders:read",))[0],
            "capacity": store.create(partner="capacity", tier="big", scopes=("orders:read",))[0],
            "quotes": store.create(partner="quoter", tier="big", scopes=("quotes:read", "quotes:write"))[0]}


def start_backends(stack: ExitStack, workdir: Path, spec: str, *, cluster: bool) -> tuple[str, str, str]:
    """nginx endpoint, PostgreSQL, MES, CRM, relay sidecar, pricing workers → (endpoint, CRM, MES DSN)."""
    port = free_port()
    conf = nginx.static_endpoint_config(name="endpoint", port=port, workdir=workdir)
    endpoint = ServerProcess(nginx.nginx_command(config=conf, name="endpoint", workdir=workdir),
                             log_path=workdir / "endpoint.log")
    endpoint.start()
    stack.callback(endpoint.stop)
    pg = PostgresServer(workdir / "postgres", fast=True, database="mes").start()
    stack.callback(pg.stop)
    mes_port, crm_port, sidecar_port = free_port(), free_port(), free_port()
    _python(stack, workdir, "mes", "-m", "legacy_sim", "mes", "--port", str(mes_port), "--dsn", pg.dsn,
            "--price-delay", str(PRICE_DELAY), "--price-slots", "0")
    _python(stack, workdir, "crm", "-m", "legacy_sim", "crm", "--port", str(crm_port), "--redis-url", spec)
    for p in (port, mes_port, crm_port):
        wait_for_port(p, timeout=60)
    mes = f"http://127.0.0.1:{mes_port}"
    streams = ["--relay-dead-letter-stream", CRM_STREAMS["dead"], "--relay-status-stream",
               CRM_STREAMS["status"]] if cluster else []
    _python(stack, workdir, "sidecar", "-m", "sidecar", "--kind", "mes", "--instance-id", "mes-1",
            "--listen", f"127.0.0.1:{sidecar_port}", "--admin", f"127.0.0.1:{free_port()}", "--upstream", mes,
            "--access-log", str(workdir / "sidecar-access.log"), "--relay-redis-url", spec,
            "--relay-reclaim-idle", "5", "--relay-timeout", "4", *streams)
    for i in range(WORKERS):
        _python(stack, workdir, f"worker-{i}", "-m", "legacy_adapters.worker", "--redis-url", spec,
                "--prefix", "{pricing}", "--backend", mes, "--concurrency", str(WORKER_CONCURRENCY),
                "--name", f"w{i}", "--visibility-timeout", "5", "--retry-base", "0.2", "--retry-max", "2")
    wait_for_port(sidecar_port, timeout=60)
    return f"http://127.0.0.1:{port}", f"http://127.0.0.1:{crm_port}", pg.dsn
