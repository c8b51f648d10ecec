"""Local Prometheus, Alertmanager and the alert webhook logger for `make run` and the tests.

Debian's binaries (``apt-get install prometheus prometheus-alertmanager``, done by
``scripts/install-deps.sh``), each in a folder of its own under ``root`` and on a loopback
port, stopped by PID like every other devstack process::

    prom = start_prometheus(root, 9090, Path("prometheus/prometheus.yml"))
    am = start_alertmanager(root, 9093, Path("prometheus/alertmanager.yml"))
    hook = start_webhook_logger(root, 9095)
    wait_ready(f"http://127.0.0.1:9090/-/ready", prom)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from devstack.process import ServerProcess, wait_ready

__all__ = ["INSTALL_HINT", "binary", "start_alertmanager", "start_prometheus", "start_webhook_logger",
           "wait_ready"]

REPO = Path(__file__).resolve().parents[1]
INSTALL_HINT = ("apt-get install -y prometheus prometheus-alertmanager "
                "(or run scripts/install-deps.sh as root)")


def binary(*names: str) -> str:
    """The first of ``names`` found on PATH; ``FileNotFoundError`` with the install hint otherwise."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"{' / '.join(names)} not found: {INSTALL_HINT}")


def start_prometheus(root: Path, port: int, config_path: Path, *, host: str = "127.0.0.1",
                     retention: str = "2d", log_path: Path | None = None) -> ServerProcess:
    """Prometheus with its TSDB in ``root/prometheus``; rule files resolve next to ``config_path``.

    ``--web.enable-lifecycle`` lets the drill reload rules with ``curl -X POST …/-/reload``.
    """
    data = root / "prometheus"
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle", "--log.format=json"]
    proc = ServerProcess(argv, log_path=log_path or root / "prometheus.log")
    proc.start()
    return proc


def start_alertmanager(root: Path, port: int, config_path: Path, *, host: str = "127.0.0.1",
                       log_path: Path | None = None) -> ServerProcess:
    """Alertmanager (one instance: clustering off) with its state in ``root/alertmanager``."""
    data = root / "alertmanager"
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary("prometheus-alertmanager", "alertmanager"), f"--config.file={config_path}",
            f"--storage.path={data}", f"--web.listen-address={host}:{port}", "--cluster.listen-address=",
            "--log.format=json"]
    proc = ServerProcess(argv, log_path=log_path or root / "alertmanager.log")
    proc.start()
    return proc


def start_webhook_logger(root: Path, port: int = 9095, *, host: str = "127.0.0.1",
                         log_path: Path | None = None) -> ServerProcess:
    """``prometheus/webhook_logger.py``: Alertmanager's receivers, one JSON line per alert."""
    script = REPO / "prometheus" / "webhook_logger.py"
    argv = [sys.executable, str(script), "--host", host, "--port", str(port)]
    proc = ServerProcess(argv, log_path=log_path or root / "alerts.log")
    proc.start()
    return proc


