"""STL geometry (numpy-stl) and the material price formula."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from contracts.stl import measure
from legacy_sim.pricing import MATERIALS, InvalidModel, measure_stl, quote
from legacy_sim.pricing.materials import material_named
from legacy_sim.pricing.samples import box_stl_ascii, box_stl_binary, box_triangles, flat_stl_binary


@pytest.mark.parametrize("model", [box_stl_binary(), box_stl_ascii()], ids=["binary", "ascii"])
def test_ten_mm_cube(model: bytes) -> None:
    g = measure_stl(model)
    assert g.volume_mm3 == pytest.approx(1000.0)
    assert g.surface_area_mm2 == pytest.approx(600.0)
    assert g.bbox_mm == pytest.approx((10.0, 10.0, 10.0))
    assert g.triangles == 12


def test_box_measures_scale_with_its_sides() -> None:
    g = measure_stl(box_stl_binary(20, 30, 5))
    assert (g.volume_mm3, g.surface_area_mm2) == pytest.approx((3000.0, 2 * (600 + 100 + 150)))
    assert g.bbox_mm == pytest.approx((20.0, 30.0, 5.0))


def test_volume_ignores_position_and_inverted_normals() -> None:
    moved = box_triangles(10, 10, 10) + 500.0
    inverted = box_triangles(10, 10, 10)[:, ::-1]
    assert measure(moved).volume_mm3 == pytest.approx(1000.0)
    assert measure(inverted).volume_mm3 == pytest.approx(1000.0)


@pytest.mark.parametrize("model", [b"", b"   ", flat_stl_binary(), b"\x00" * 84, b"short",
                                   box_stl_binary()[:-1], b"solid a\n facet normal 0 0 1\n junk\n"])
def test_unusable_models_raise_invalid_model(model: bytes) -> None:
    with pytest.raises(InvalidModel):
        measure_stl(model)


def test_non_finite_coordinates_are_invalid() -> None:
    tris = box_triangles(1, 1, 1)
    tris[0, 0, 0] = np.nan
    with pytest.raises(InvalidModel, match="non-finite"):
        measure(tris)


def test_quote_adds_material_machine_time_and_setup() -> None:
    g = measure_stl(box_stl_binary())
    pla = quote(g, MATERIALS["PLA"])
    assert pla.price_eur == Decimal("15.72")
    assert pla.mass_g == pytest.approx(1.24)
    assert quote(g, MATERIALS["TITANIUM"]).price_eur > pla.price_eur
    assert quote(measure_stl(box_stl_binary(10, 10, 40)), MATERIALS["PLA"]).price_eur > pla.price_eur


def test_material_lookup_is_case_insensitive_and_names_the_choices() -> None:
    assert material_named("petg").name == "PETG"
    with pytest.raises(ValueError, match="PLA, ABS"):
        material_named("GOLD")
    assert set(MATERIALS) == {"PLA", "ABS", "PETG", "NYLON", "RESIN", "TITANIUM"}
