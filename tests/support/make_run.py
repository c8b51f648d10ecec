"""``make run`` for the tests: ``python -m devstack run`` on its default ports, stopped like Ctrl-C.

The README and the banner name the default ports (8080, 8081, 9901, 9090, …), so a test that
follows them needs the platform exactly there: a busy port is a clear failure naming it, never
a skip. State and logs go to a temporary run dir (``MES_EDGE_RUN_DIR``), never to ``.run/``.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.platform import Ports

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "processes: "  # printed right after the banner
START_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


def default_ports(pricing_workers: int = 2) -> dict[str, int]:
    """Every TCP port ``make run`` listens on, by what listens there."""
    p = Ports()
    ports = {"postgres": p.postgres, "redis": p.redis, "crm": p.crm, "crm sidecar": p.crm_sidecar,
             "crm sidecar admin": p.crm_sidecar + 10, "prometheus": p.prometheus,
             "alertmanager": p.alertmanager, "alert webhook": p.alert_webhook,
             "gateway external": p.external, "gateway internal": p.internal, "gateway admin": p.admin}
    for i, (mes, sidecar) in enumerate(zip(p.mes, p.mes_sidecars, strict=True), start=1):
        ports |= {f"mes-{i}": mes, f"mes-{i} sidecar": sidecar, f"mes-{i} sidecar admin": sidecar + 10}
    ports |= {f"pricing worker {i + 1} metrics": p.pricing_metrics + i for i in range(pricing_workers)}
    return ports


def busy(ports: dict[str, int]) -> dict[str, int]:
    """The ones something accepts connections on already."""
    taken = {}
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                taken[name] = port
    return taken


@dataclass(frozen=True)
class MakeRun:
    """A running ``make run``: what it printed up to the process list, its run dir and environment."""

    output: str
    root: Path
    env: dict[str, str]

    @property
    def banner(self) -> str:
        return self.output.split(READY_LINE, 1)[0]


def _reader(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)
    lines.put(None)


@contextmanager
def make_run(root: Path) -> Iterator[MakeRun]:
    """Start the platform as ``make run`` does, yield once its banner is printed, then stop it (SIGINT)."""
    if taken := busy(default_ports()):
        listing = ", ".join(f"{name} :{port}" for name, port in taken.items())
        raise RuntimeError(f"make run needs its default ports, but these are taken: {listing} "
                           "(is a `make run` up? stop it, or see `ss -ltnp`)")
    env = {**os.environ, "MES_EDGE_RUN_DIR": str(root), "GATEWAY_API_KEY_STORE": str(root / "api-keys.json")}
    proc = subprocess.Popen([sys.executable, "-m", "devstack", "run"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        while not output or not output[-1].startswith(READY_LINE):
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                raise TimeoutError(f"make run printed no banner in {START_TIMEOUT:.0f} s:\n"
                                   + "".join(output)) from None
            if line is None:
                raise RuntimeError(f"make run exited ({proc.wait()}) before its banner:\n" + "".join(output))
            output.append(line)
        yield MakeRun(output="".join(output), root=root, env=env)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C: the orchestrator stops every process it started by PID, in reverse order."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
