"""Debian's Redis and node exporters for `make run`: Redis operations/s and the stores' disks.

``scripts/install-deps.sh`` installs ``prometheus-redis-exporter`` (1.45) and
``prometheus-node-exporter`` (1.5); `make run` starts one of each on loopback, supervised like
its other children, and its Prometheus scrapes them (jobs ``redis`` and ``node`` of
``prometheus/prometheus.yml``). The capacity model (``telemetry/capacity_model.py``) reads them::

    redis = start_redis_exporter(logs, 9501, "redis://127.0.0.1:56379")
    node = start_node_exporter(root, 9502, {"metrics": root / "prometheus", "logs": logs, …})

The node exporter runs only the collectors the model needs: ``filesystem`` (size and free bytes
of every mounted filesystem) and ``textfile``, which serves one ``mes_edge_store_mountpoint_info``
series per store — which mount point holds the metrics store, the log directory, the MES
database — written here at start-up, so a rule can pick a store's filesystem by name.
"""

from __future__ import annotations

import os
from pathlib import Path

from devstack.monitoring import binary
from devstack.process import ServerProcess

__all__ = ["STORE_INFO", "mountpoint", "start_node_exporter", "start_redis_exporter", "store_info"]

#: the textfile series naming each store's filesystem (joined with node_filesystem_* on mountpoint)
STORE_INFO = "mes_edge_store_mountpoint_info"
#: node_exporter's default minus ``overlay``: a run dir inside a container lives on one, and its
#: filesystem is the one that fills up
_FS_TYPES_EXCLUDE = ("^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs"
                     "|iso9660|mqueue|nsfs|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs"
                     "|sysfs|tracefs)$")


def start_redis_exporter(logs: Path, port: int, redis_url: str, *, host: str = "127.0.0.1") -> ServerProcess:
    """redis_exporter for the Redis at ``redis_url`` (its commands/s: ``redis_commands_processed_total``)."""
    argv = [binary("prometheus-redis-exporter", "redis_exporter"), f"-redis.addr={redis_url}",
            f"-web.listen-address={host}:{port}"]
    proc = ServerProcess(argv, log_path=logs / "redis-exporter.log")
    proc.start()
    return proc


def mountpoint(path: Path) -> str:
    """The mount point of the filesystem holding ``path`` (which may not exist yet)."""
    current = path.resolve()
    while not current.exists():
        current = current.parent
    while not os.path.ismount(current):
        current = current.parent
    return str(current)


def store_info(stores: dict[str, Path]) -> str:
    """The textfile collector's file: one info series per store, naming its mount point."""
    lines = [f"# HELP {STORE_INFO} The filesystem (mount point) holding each mes-edge store.",
             f"# TYPE {STORE_INFO} gauge"]
    for store, path in sorted(stores.items()):
        lines.append(f'{STORE_INFO}{{store="{store}",mountpoint="{mountpoint(path)}"}} 1')
    return "\n".join(lines) + "\n"


def start_node_exporter(root: Path, port: int, stores: dict[str, Path], *, host: str = "127.0.0.1",
                        log_path: Path | None = None) -> ServerProcess:
    """node_exporter with the filesystem and textfile collectors only; ``stores``: name → a path in it."""
    textfiles = root / "node-exporter"
    textfiles.mkdir(parents=True, exist_ok=True)
    staged = textfiles / "stores.prom.tmp"
    staged.write_text(store_info(stores))
    staged.replace(textfiles / "stores.prom")  # the collector never reads half a file
    argv = [binary("prometheus-node-exporter", "node_exporter"), "--collector.disable-defaults",
            "--collector.filesystem", f"--collector.filesystem.fs-types-exclude={_FS_TYPES_EXCLUDE}",
            "--collector.textfile", f"--collector.textfile.directory={textfiles}",
            "--web.disable-exporter-metrics", f"--web.listen-address={host}:{port}"]
    proc = ServerProcess(argv, log_path=log_path or root / "node-exporter.log")
    proc.start()
    return proc
