"""The sample models of ``examples/models/`` and the prices documented for them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from legacy_sim.pricing import measure_stl, quote
from legacy_sim.pricing.materials import MATERIALS

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


def _documented() -> dict[str, dict[str, object]]:
    table: dict[str, dict[str, object]] = json.loads((MODELS / "prices.json").read_text())
    return table


def test_the_examples_ship_binary_and_ascii_models_with_prices() -> None:
    table = _documented()
    assert {entry["format"] for entry in table.values()} == {"binary", "ascii"}
    assert sorted(table) == sorted(p.name for p in MODELS.glob("*.stl"))


def test_each_example_model_prices_as_documented_by_the_legacy_pricing() -> None:
    for name, entry in _documented().items():
        data = (MODELS / name).read_bytes()
        geometry = measure_stl(data)
        assert data.lstrip().startswith(b"solid") == (entry["format"] == "ascii"), name
        assert geometry.volume_mm3 == pytest.approx(entry["volume_mm3"]), name
        prices = {material: str(quote(geometry, spec).price_eur) for material, spec in MATERIALS.items()}
        assert prices == entry["price_eur"], name


def test_the_examples_readme_table_shows_the_computed_prices() -> None:
    table = _documented()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+\.stl)` \|(.*)$",
                                                          (MODELS / "README.md").read_text(), re.M)}
    assert sorted(rows) == sorted(table)
    for name, row in rows.items():
        prices = table[name]["price_eur"]
        assert isinstance(prices, dict)
        for material in ("PLA", "PETG", "TITANIUM"):
            assert f" {prices[material]} €" in row, (name, material)
