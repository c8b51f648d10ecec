"""The capacity model: one source for the rules, the forecast, the dashboard; the capacity file."""

from __future__ import annotations

from pathlib import Path

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


def test_rule_file_has_one_usage_and_one_limit_per_resource_with_bounded_labels() -> None:
    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    for record in ("capacity:usage", "capacity:limit"):
        labels = [r["labels"] for r in rules if r.get("record") == record]
        assert [lbl["resource"] for lbl in labels] == [r.name for r in RESOURCES]
        assert all(set(lbl) == {"resource", "kind"} for lbl in labels)


def test_limits_carry_the_capacity_file_figures() -> None:
    capacities = load_capacities()
    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    for rule in (r for r in rules if r.get("record") == "capacity:limit"):
        assert rule["expr"] == f"vector({capacities[rule['labels']['resource']].value:.12g})"


def test_every_capacity_names_where_it_came_from() -> None:
    capacities = load_capacities(CAPACITY_FILE)
    assert set(capacities) == set(BY_NAME)
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
    path.write_text(yaml.safe_dump({"capacities": {"redis_ops": {"value": 1, "source": "s", "method": "m"}}}))
    with pytest.raises(ValueError, match=r"unknown resources \['redis_ops'\], missing"):
        load_capacities(path)


def test_written_capacity_file_reads_back(tmp_path: Path) -> None:
    capacities = {r.name: Capacity(resource=r.name, value=2.5, source="run: x", method="y")
                  for r in RESOURCES}
    write_capacities(capacities, tmp_path / "capacity.yml")
    assert load_capacities(tmp_path / "capacity.yml") == capacities
