"""make run's exporters: the store → mount point series the capacity model joins on."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from devstack.exporters import STORE_INFO, mountpoint, store_info
from devstack.platform import Ports
from telemetry.capacity_model import RESOURCES


def test_mountpoint_of_a_path_not_created_yet_is_that_of_its_nearest_parent(tmp_path: Path) -> None:
    assert mountpoint(tmp_path / "not" / "yet") == mountpoint(tmp_path)
    assert os.path.ismount(mountpoint(tmp_path))


def test_store_info_names_one_mount_point_per_store(tmp_path: Path) -> None:
    text = store_info({"metrics": tmp_path / "prometheus", "logs": tmp_path})
    where = mountpoint(tmp_path)
    assert f'{STORE_INFO}{{store="logs",mountpoint="{where}"}} 1' in text.splitlines()
    assert f'{STORE_INFO}{{store="metrics",mountpoint="{where}"}} 1' in text.splitlines()
    assert f"# TYPE {STORE_INFO} gauge" in text


def test_exporters_move_with_the_platform_and_avoid_the_sidecar_admin_ports() -> None:
    ports = Ports()
    listening = ports.listening()
    assert len(set(listening.values())) == len(listening)  # 9121 is a sidecar's admin, not redis_exporter
    moved = ports.shifted(1000).listening()
    assert moved["redis exporter"] == listening["redis exporter"] + 1000
    assert moved["node exporter"] == listening["node exporter"] + 1000


def test_compose_names_the_stores_the_capacity_model_reads_and_mounts_them() -> None:
    """prometheus/node-exporter/stores.docker.prom is make run's store_info for compose's volumes."""
    repo = Path(__file__).resolve().parents[3]
    text = (repo / "prometheus" / "node-exporter" / "stores.docker.prom").read_text()
    listed = set(re.findall(rf'^{STORE_INFO}{{store="(\w+)",mountpoint="/"}} 1$', text, re.M))
    read = set(re.findall(r'store="(\w+)"', " ".join(f"{r.usage} {r.limit}" for r in RESOURCES)))
    assert listed == read - {"logs"}  # compose's log store is Elasticsearch (job elasticsearch)
    node = yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]["node-exporter"]
    assert "./prometheus/node-exporter:/etc/node-exporter:ro" in node["volumes"]
    assert "--collector.textfile.directory=/etc/node-exporter" in node["command"]
