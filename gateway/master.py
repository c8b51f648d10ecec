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

from telemetry.metrics import mark_process_dead, reset_multiprocess_dir

log = logging.getLogger("gateway.master")


def _spawn(config: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway", "--config", config, "--worker"], env=env)


def run_master(config: str, workers: int, *, metrics_dir: str | None = None) -> int:
    """Start ``workers`` processes and supervise them until told to stop."""
    metrics_path = Path(metrics_dir or tempfile.mkdtemp(prefix="gw-metrics-"))
    reset_multiprocess_dir(metrics_path)
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
            mark_process_dead(proc.pid, metrics_path)
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
