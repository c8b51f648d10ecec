"""The canonical fingerprint: what counts as the same model, and what does not."""

from __future__ import annotations

import numpy as np

from legacy_adapters.fingerprint import canonical_triangles, fingerprint
from legacy_sim.pricing.samples import box_triangles


def _fp(tris: np.ndarray, material: str = "PLA", rules: str = "1") -> str:
    return fingerprint(tris, material=material, rules_version=rules)


def test_shuffled_rotated_and_translated_copy_has_the_same_fingerprint() -> None:
    box = box_triangles(10, 20, 30)
    rng = np.random.default_rng(0)
    copy = np.stack([np.roll(t, int(rng.integers(3)), axis=0) for t in box[rng.permutation(12)]])
    assert _fp(box) == _fp(copy + np.array([1000.125, -7.5, 0.001]))


def test_float32_noise_below_a_micrometre_is_ignored() -> None:
    box = box_triangles(10, 20, 30)
    assert _fp(box) == _fp((box + 123.456).astype(np.float32).astype(np.float64))


def test_reversed_winding_rotation_material_and_rules_change_the_fingerprint() -> None:
    box = box_triangles(10, 20, 30)
    assert _fp(box) != _fp(box[:, ::-1])                 # inverted triangles
    assert _fp(box) != _fp(box_triangles(30, 20, 10))     # rotated: another bbox height, another price
    assert _fp(box) != _fp(box, material="ABS")
    assert _fp(box) != _fp(box, rules="2")


def test_canonical_form_picks_the_smallest_rotation_even_with_repeated_vertices() -> None:
    a, b = [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]
    one = np.array([[a, a, b]])
    assert (canonical_triangles(one) == canonical_triangles(np.array([[a, b, a]]))).all()
