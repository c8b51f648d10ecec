"""A small mes-edge platform on free loopback ports for the load-test smoke run.

The pieces ``make run`` starts, minus monitoring and sidecars: a seeded MES database, one legacy
MES (consuming the CRM queue itself), the CRM, one pricing worker and the gateway (one worker)
with the *shipped* ``config/gateway.yaml`` — only addresses, files and Redis URLs are rewritten,
so the routes the load tests use are the real ones. Every process is stopped by PID.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.ports import free_port, wait_for_port
from devstack.process import ServerProcess
from devstack.redis import RedisServer
from loadtests.runner import wait_up

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class SmokeStack:
    """Addresses of the running pieces (``LOADTEST_*`` values) and the key store."""

    external_url: str
    internal_url: str
    mes_url: str
    crm_url: str
    key_store: Path

    def env(self) -> dict[str, str]:
        return {"LOADTEST_EXTERNAL_URL": self.external_url, "LOADTEST_INTERNAL_URL": self.internal_url,
                "LOADTEST_MES_URLS": self.mes_url, "LOADTEST_CRM_URL": self.crm_url}


def _redis_urls(node: Any, base: str) -> None:
    """Point every ``*redis_url`` of the config at ``base`` (same logical db number)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("redis_url") and isinstance(value, str):  # redis_url, events_redis_url, …
                db = re.search(r"/(\d+)\}?$", value)  # "${X:-redis://host:port/1}" → 1
                node[key] = f"{base}/{db.group(1) if db else 0}"
            else:
                _redis_urls(value, base)
    elif isinstance(node, list):
        for item in node:
            _redis_urls(item, base)


def gateway_config(tmp: Path, *, mes: str, crm: str, redis_base: str, store: Path) -> dict[str, Any]:
    """``config/gateway.yaml`` with loopback free ports, files under ``tmp`` and our servers."""
    cfg: dict[str, Any] = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    cfg["admin"] = {"host": "127.0.0.1", "port": free_port()}
    cfg["logging"] = {**cfg.get("logging", {}), "level": "WARNING",
                      "access_log": str(tmp / "access.log"), "app_log": str(tmp / "gateway.log")}
    for listener in cfg["listeners"].values():
        listener.update(host="127.0.0.1", port=free_port())
    for name, cluster in cfg["clusters"].items():
        cluster["endpoints"] = [crm] if name == "crm" else [mes]
    cfg["api_keys"] = {"store": str(store), "pepper": ""}  # dev pepper file beside the store
    _redis_urls(cfg, redis_base)
    return cfg


def _process(stack: ExitStack, name: str, argv: list[str], logs: Path) -> ServerProcess:
    proc = ServerProcess([sys.executable, *argv], log_path=logs / f"{name}.log")
    proc.start()
    stack.callback(proc.stop)
    return proc


@contextmanager
def smoke_stack(tmp: Path, pg_dsn: str) -> Iterator[SmokeStack]:
    """Start everything (seeded database first); stop it all by PID on exit."""
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        base = redis.url.rsplit("/", 1)[0]
        mes_port, crm_port = free_port(), free_port()
        mes = _process(stack, "mes", ["-m", "legacy_sim", "mes", "--port", str(mes_port), "--dsn", pg_dsn,
                                      "--price-delay", "0.2", "--consume-crm", "--redis-url", f"{base}/0"],
                       logs)
        crm = _process(stack, "crm", ["-m", "legacy_sim", "crm", "--port", str(crm_port),
                                      "--redis-url", f"{base}/0"], logs)
        for port, proc in ((mes_port, mes), (crm_port, crm)):
            try:
                wait_for_port(port, timeout=30)
            except TimeoutError:
                raise RuntimeError(proc.log_tail()) from None
        subprocess.run([sys.executable, "-m", "legacy_sim", "seed", "--dsn", pg_dsn, "--orders", "3000",
                        "--active", "600", "--append"], check=True, capture_output=True, timeout=60)
        mes_url, crm_url = f"http://127.0.0.1:{mes_port}", f"http://127.0.0.1:{crm_port}"
        worker = ["-m", "legacy_adapters.worker", "--redis-url", f"{base}/2", "--backend", mes_url,
                  "--concurrency", "2", "--name", "smoke-1"]
        _process(stack, "pricing-worker", worker, logs)
        store = tmp / "api-keys.json"
        cfg = gateway_config(tmp, mes=mes_url, crm=crm_url, redis_base=base, store=store)
        (tmp / "gateway.yaml").write_text(yaml.safe_dump(cfg))
        gateway = _process(stack, "gateway", ["-m", "gateway", "--config", str(tmp / "gateway.yaml"),
                                              "--workers", "1", "--dev"], logs)  # dev pepper file
        if not wait_up(f"http://127.0.0.1:{cfg['admin']['port']}/readyz", timeout=30):
            raise RuntimeError(f"gateway not ready:\n{gateway.log_tail()}")
        listeners = cfg["listeners"]
        yield SmokeStack(external_url=f"http://127.0.0.1:{listeners['external']['port']}",
                         internal_url=f"http://127.0.0.1:{listeners['internal']['port']}",
                         mes_url=mes_url, crm_url=crm_url, key_store=store)
