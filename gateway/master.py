"""The master of a multi-process gateway: N workers sharing ports via SO_REUSEPORT.

Like NGINX's master: it forwards SIGTERM/SIGINT (drain and stop) and SIGHUP
(reload) to the workers, restarts a worker that dies unexpectedly, and owns
the Prometheus multiprocess directory so ``/metrics`` on any worker reports
the sum over all of them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("gateway.master")


def _mark_dead(metrics_path: Path, pid: int) -> None:
    """Drop a dead worker's live-gauge files (the master itself is not in multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics_path))  # type: ignore[no-untyped-call]


def _spawn(config: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway", "--config", config, "--worker"], env=env)


def run_master(config: str, workers: int, *, metrics_dir: str | None = None) -> int:
    """Start ``workers`` processes and supervise them until told to stop."""
    metrics_path = Path(metrics_dir or tempfile.mkdtemp(prefix="gw-metrics-"))
    shutil.rmtree(metrics_path, ignore_errors=True)  # stale files from a previous run would add up
    metrics_path.mkdir(parents=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_path)}

    procs = [_spawn(config, env) for _ in range(workers)]
    stopping = False

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    log.info("gateway master started", extra={"event.action": "start", "gateway.workers": workers,
                                               "process.pids": [p.pid for p in procs]})
    restarts: list[float] = []
    while True:
        alive = [p for p in procs if p.poll() is None]
        if stopping and not alive:
            break
        for i, proc in enumerate(procs):
            code = proc.poll()
            if code is None or stopping:
                continue
            _mark_dead(metrics_path, proc.pid)
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            if code == 2 or len(restarts) > 5 * workers:
                log.error("worker exited with %s; giving up", code, extra={"event.action": "stop"})
                forward(signal.SIGTERM, None)
                continue
            log.warning("worker %s exited with %s; restarting", proc.pid, code,
                        extra={"event.action": "worker-restart"})
            procs[i] = _spawn(config, env)
        time.sleep(0.2)
    shutil.rmtree(metrics_path, ignore_errors=True)
    return max((p.returncode or 0) for p in procs) if not stopping else 0
