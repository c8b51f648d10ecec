"""`make run` on other ports than its defaults: the monitoring configs with the ports moved.

``prometheus/prometheus.yml``, its pricing-worker target list and ``prometheus/alertmanager.yml``
name `make run`'s default loopback ports. A platform started on other ports (tests that must not
collide with a developer's `make run`) gets copies with every ``127.0.0.1:<default>`` moved and
the relative paths made absolute, written under its run dir::

    moved = {9901: 19901, 9121: 19121, …}            # default port → the one in use
    prometheus_yml = prometheus_config(Path("prometheus/prometheus.yml"), root / "monitoring", moved)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["alertmanager_config", "move_ports", "prometheus_config"]

_LOOPBACK_PORT = re.compile(r"(?<=127\.0\.0\.1:)(\d+)\b")


def move_ports(text: str, moved: dict[int, int]) -> str:
    """``text`` with every ``127.0.0.1:<port>`` of ``moved`` replaced by its new port."""
    return _LOOPBACK_PORT.sub(lambda m: str(moved.get(int(m.group(1)), m.group(1))), text)


def prometheus_config(config_path: Path, out_dir: Path, moved: dict[int, int]) -> Path:
    """A copy of ``config_path`` in ``out_dir``: ports moved, rule files and file_sd lists absolute."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, Any] = yaml.safe_load(move_ports(config_path.read_text(), moved))
    cfg["rule_files"] = [str(config_path.parent / pattern) for pattern in cfg.get("rule_files", [])]
    for job in cfg.get("scrape_configs", []):
        for sd in job.get("file_sd_configs", []):
            files = []
            for name in sd["files"]:
                target = out_dir / Path(name).name
                target.write_text(move_ports((config_path.parent / name).read_text(), moved))
                files.append(str(target))
            sd["files"] = files
    path = out_dir / config_path.name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def alertmanager_config(config_path: Path, out_dir: Path, moved: dict[int, int]) -> Path:
    """A copy of ``config_path`` in ``out_dir`` with its receivers' ports moved."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / config_path.name
    path.write_text(move_ports(config_path.read_text(), moved))
    return path
