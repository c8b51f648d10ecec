"""make run's exporters: the store → mount point series the capacity model joins on."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.exporters import STORE_INFO, mountpoint, store_info
from devstack.platform import Ports


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
