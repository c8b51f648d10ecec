"""The capacity model: one source for the rules, the forecast, the dashboard; the capacity file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from telemetry.capacity_model import (
    BY_NAME,
    CAPACITY_FILE,
    RESOURCES,
    Capacity,
    load_capacities,
    write_capacities,
)
from telemetry.capacity_rules import RULES_FILE, render


def test_checked_in_rule_file_equals_the_generator_output() -> None:
    assert RULES_FILE.read_text() == render(), "run python -m telemetry capacity-rules"


def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]


def test_rule_file_has_one_usage_and_a_limit_per_resource_with_bounded_labels() -> None:
    usage = [r["labels"] for r in _rules() if r.get("record") == "capacity:usage"]
    assert [lbl["resource"] for lbl in usage] == [r.name for r in RESOURCES]
    assert all(set(lbl) == {"resource", "kind"} for lbl in usage)
    limits = [r["labels"] for r in _rules() if r.get("record") == "capacity:limit"]
    assert sorted({lbl["resource"] for lbl in limits}) == sorted(r.name for r in RESOURCES)
    assert all(set(lbl) == {"resource", "kind", "limit_source"} for lbl in limits)
    assert {lbl["limit_source"] for lbl in limits} == {"measured", "provisioned", "live"}


def test_limits_carry_the_capacity_file_figures_and_live_limits_come_first() -> None:
    capacities = load_capacities()
    for rule in (r for r in _rules() if r.get("record") == "capacity:limit"):
        resource = BY_NAME[rule["labels"]["resource"]]
        if rule["labels"]["limit_source"] == "live":
            assert rule["expr"] == resource.limit
            continue
        capacity = capacities[resource.name]
        assert rule["labels"]["limit_source"] == capacity.origin
        figure = f"vector({capacity.value:.12g})"
        # a figure beside a live limit holds only while the live one has no series
        wanted = figure if resource.limit is None else f"{figure} unless on () ({resource.limit})"
        assert rule["expr"] == wanted


def test_a_figure_set_by_the_operator_is_provisioned_a_run_measured() -> None:
    def origin(source: str) -> str:
        return Capacity(resource="x", value=1, source=source, method="m").origin

    assert origin("provisioned: 50 GiB") == "provisioned"
    assert origin("python -m bench.redis_capacity, 2026-12-05") == "measured"


def test_every_capacity_names_where_it_came_from() -> None:
    capacities = load_capacities(CAPACITY_FILE)
    assert {r.name for r in RESOURCES if r.limit is None} <= set(capacities) <= set(BY_NAME)
    assert all(c.source.strip() and c.method.strip() for c in capacities.values())


@pytest.mark.parametrize(("entry", "message"), [
    ({"value": 0, "source": "run", "method": "m"}, "positive number"),
    ({"value": "12", "source": "run", "method": "m"}, "positive number"),
    ({"value": 12, "source": " ", "method": "m"}, "source: text expected"),
])
def test_capacity_file_refuses_a_figure_without_value_or_source(tmp_path: Path, entry: dict[str, object],
                                                               message: str) -> None:
    doc = {"capacities": {r.name: {"value": 1, "source": "s", "method": "m"} for r in RESOURCES}}
    doc["capacities"]["mes_rps"] = entry
    path = tmp_path / "capacity.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=message):
        load_capacities(path)


def test_capacity_file_refuses_unknown_and_missing_resources(tmp_path: Path) -> None:
    path = tmp_path / "capacity.yml"
    path.write_text(yaml.safe_dump({"capacities": {"kafka_ops": {"value": 1, "source": "s", "method": "m"}}}))
    with pytest.raises(ValueError, match=r"unknown resources \['kafka_ops'\], missing \['gateway_rps'"):
        load_capacities(path)


def test_written_capacity_file_reads_back(tmp_path: Path) -> None:
    capacities = {r.name: Capacity(resource=r.name, value=2.5, source="run: x", method="y")
                  for r in RESOURCES}
    write_capacities(capacities, tmp_path / "capacity.yml")
    assert load_capacities(tmp_path / "capacity.yml") == capacities


def test_a_bench_adds_a_first_figure_to_an_incomplete_file(tmp_path: Path) -> None:
    path = tmp_path / "capacity.yml"
    entry = {"value": 1, "source": "s", "method": "m"}
    path.write_text(yaml.safe_dump({"capacities": {"gateway_rps": entry}}))
    with pytest.raises(ValueError, match="missing"):
        load_capacities(path)
    assert set(load_capacities(path, complete=False)) == {"gateway_rps"}


def test_disk_resources_take_their_capacity_live_from_the_store_and_its_filesystem() -> None:
    live = {r.name for r in RESOURCES if r.limit is not None}
    assert live == {"mes_database_bytes", "metrics_store_bytes", "log_store_bytes"}
    for name, store in (("mes_database_bytes", "mes_database"), ("metrics_store_bytes", "metrics")):
        assert f'mes_edge_store_mountpoint_info{{store="{store}"}}' in (BY_NAME[name].limit or "")
