"""The platform under test: `make run`'s ``Platform`` on shifted ports, plus the harness's handles.

Started exactly as `make run` starts it (``devstack.platform.Platform.start``), with three
differences, all for measuring:

* every port moved by one free offset and the state in a temporary run dir, so a developer's
  `make run` and other agents' platforms are never touched;
* the gateway runs on a copy of ``config/gateway.yaml`` (the SIGHUP fault edits and reloads it)
  with ``quotes.allow_private_callbacks`` on, and the workers with
  ``PRICING_ALLOW_PRIVATE_CALLBACKS=1``: quote webhooks go to the harness's loopback receiver;
* ``mes-2``'s sidecar reaches its MES through a :class:`devstack.fault_proxy.FaultProxy` (the
  MES kill and freeze faults act on ``mes-1``, reached directly: a proxy in front of a dead MES
  would turn its "connection refused" into "accepted, then closed").

Processes are found, signalled and restarted by the PIDs this harness started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.fault_proxy import FaultProxy
from devstack.platform import Platform, Ports, free_offset
from devstack.postgres import PostgresServer
from devstack.process import ServerProcess
from devstack.redis import RedisServer
from loadtests.chaos.monitoring import compress_prometheus
from loadtests.chaos.webhook_sink import WebhookSink

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


@dataclass
class Stack:
    """A running platform and what the faults act on."""

    root: Path
    platform: Platform
    proxy: FaultProxy
    sink: WebhookSink
    gateway_config: Path
    compression: int
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> Ports:
        return self.platform.ports

    # --- finding what runs -------------------------------------------------------------------
    def component(self, name: str) -> ServerProcess | PostgresServer | RedisServer:
        for started, proc in self.platform.started:
            if started == name:
                return proc
        raise KeyError(name)

    def process(self, name: str) -> ServerProcess:
        proc = self.component(name)
        if not isinstance(proc, ServerProcess):
            raise TypeError(f"{name} is not a plain process")
        return proc

    def _replace(self, name: str, new: ServerProcess | PostgresServer | RedisServer) -> None:
        self.platform.started = [(n, new if n == name else p) for n, p in self.platform.started]

    def gateway_workers(self) -> list[int]:
        """PIDs of the gateway master's worker processes."""
        master = self.process("gateway").pid
        return [pid for pid in _children(master or 0) if "--worker" in _cmdline(pid)] if master else []

    # --- acting on it ------------------------------------------------------------------------
    def signal_group(self, name: str, sig: int) -> None:
        """``sig`` to the process group of ``name`` (the child we started and its own children)."""
        proc = self.component(name)
        if proc.pid is not None:
            os.killpg(proc.pid, sig)

    def signal_tree(self, name: str, sig: int) -> None:
        """``sig`` to ``name`` and every descendant, parents first (SIGSTOP/SIGCONT of a whole server).

        PostgreSQL's postmaster puts each backend in a session of its own, so a signal to the
        process group would freeze the postmaster but leave the MES's open connections served.
        """
        root = self.component(name).pid
        pending, seen = [root] if root else [], []
        while pending:
            pid = pending.pop(0)
            seen.append(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            pending += _children(pid)

    def restart(self, name: str) -> None:
        """Start ``name`` again with the argv, environment and log it had (after a kill)."""
        old = self.process(name)
        old.stop(signal.SIGKILL, timeout=5)
        new = ServerProcess(old.argv, log_path=old.log_path, env=old.env)
        new.start()
        self._replace(name, new)

    def redis_start(self) -> None:
        """Redis again on its folder and port: it replays its append-only file."""
        redis = self.component("redis")
        assert isinstance(redis, RedisServer)
        redis.stop()  # the dead process: nothing to stop, forget it
        redis.start(timeout=60)

    def postgres_stop(self) -> None:
        pg = self.component("postgres")
        assert isinstance(pg, PostgresServer)
        pg.stop()

    def postgres_start(self) -> None:
        pg = self.component("postgres")
        assert isinstance(pg, PostgresServer)
        pg.start(timeout=60)

    def reload_gateway(self, *, variant: bool) -> None:
        """Write the gateway config (``variant``: with changed limits) and SIGHUP the master."""
        self.gateway_config.write_text(gateway_config_text(variant=variant))
        self.signal_group_leader("gateway", signal.SIGHUP)

    def signal_group_leader(self, name: str, sig: int) -> None:
        proc = self.component(name)
        if proc.pid is not None:
            os.kill(proc.pid, sig)

    @property
    def dsn(self) -> str:
        pg = self.component("postgres")
        assert isinstance(pg, PostgresServer)
        return pg.dsn

    def redis_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/{db}"

    def stop(self) -> None:
        self.platform.stop()
        self.proxy.stop()
        self.sink.stop()


def gateway_config_text(*, variant: bool = False) -> str:
    """``config/gateway.yaml`` with private callbacks allowed; ``variant`` also changes live limits.

    The variant is what an operator's reload under load looks like: the ``mes`` cluster's
    per-try timeout and health-check interval changed (clusters are rebuilt on reload).
    """
    cfg = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    cfg.setdefault("quotes", {})["allow_private_callbacks"] = True
    if variant:
        mes = cfg["clusters"]["mes"]
        mes["health_check"] = {**mes.get("health_check", {}), "interval": 1.5}
    return yaml.safe_dump(cfg, sort_keys=False)


def start(root: Path, *, price_delay: float, compression: int) -> Stack:
    """The platform on free shifted ports under ``root``, with the proxy and the webhook sink."""
    root.mkdir(parents=True, exist_ok=True)
    ports = Ports().shifted(free_offset())
    proxy = FaultProxy(upstream_port=ports.mes[1]).start()
    sink = WebhookSink(root / "webhooks.jsonl").start()
    gateway_config = root / "gateway.yaml"
    gateway_config.write_text(gateway_config_text())
    os.environ["PRICING_ALLOW_PRIVATE_CALLBACKS"] = "1"  # the platform's children inherit it
    platform = Platform(root=root, ports=ports, price_delay=price_delay, gateway_config=str(gateway_config),
                        sidecar_upstreams={"mes-2": f"http://127.0.0.1:{proxy.port}"})
    stack = Stack(root=root, platform=platform, proxy=proxy, sink=sink, gateway_config=gateway_config,
                  compression=compression)
    try:
        platform.start()
        compress_prometheus(root / "monitoring" / "prometheus.yml", ports.prometheus, factor=compression)
    except BaseException:
        stack.stop()
        raise
    return stack
