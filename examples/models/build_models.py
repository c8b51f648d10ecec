"""Write the sample STL models of ``examples/models/`` and their prices from the legacy pricing code.

    .venv/bin/python examples/models/build_models.py     # rewrites *.stl and prices.json

The prices in ``prices.json`` are what the legacy MES (``legacy_sim.pricing``: measure the model,
then material + machine time + set-up fee) answers for each model and material;
``tests/unit/test_readme_example_models.py`` recomputes them from the files.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
from stl import mesh as stl_mesh

from legacy_sim.pricing import measure_stl, quote
from legacy_sim.pricing.materials import MATERIALS
from legacy_sim.pricing.samples import box_stl_ascii, box_stl_binary

HERE = Path(__file__).resolve().parent

# an L-shaped profile (mm, counter-clockwise), extruded 20 mm: a small angle bracket
_L_PROFILE = [(0.0, 0.0), (40.0, 0.0), (40.0, 5.0), (5.0, 5.0), (5.0, 30.0), (0.0, 30.0)]
_L_REFLEX = 3  # (5, 5) sees every other corner: the caps are a fan from it


def extruded_triangles(profile: list[tuple[float, float]], fan_from: int, height: float) -> np.ndarray:
    """The closed, outward-facing triangles of ``profile`` extruded along z by ``height``."""
    n = len(profile)
    bottom = [np.array([x, y, 0.0]) for x, y in profile]
    top = [np.array([x, y, height]) for x, y in profile]
    tris: list[list[np.ndarray]] = []
    others = [(fan_from + k) % n for k in range(1, n)]
    for a, b in itertools.pairwise(others):
        tris.append([top[fan_from], top[a], top[b]])           # counter-clockwise seen from +z
        tris.append([bottom[fan_from], bottom[b], bottom[a]])  # clockwise seen from +z: faces -z
    for i in range(n):
        j = (i + 1) % n
        tris.append([bottom[i], bottom[j], top[j]])
        tris.append([bottom[i], top[j], top[i]])
    return np.array(tris, dtype=np.float64)


def binary_stl(triangles: np.ndarray, name: str) -> bytes:
    model = stl_mesh.Mesh(np.zeros(len(triangles), dtype=stl_mesh.Mesh.dtype))
    model.vectors[:] = triangles
    model.update_normals()
    return name.encode().ljust(80, b" ") + np.uint32(len(triangles)).tobytes() + model.data.tobytes()


MODELS: dict[str, bytes] = {
    "bracket.stl": binary_stl(extruded_triangles(_L_PROFILE, _L_REFLEX, 20.0), "mes-edge example bracket"),
    "cube-20mm.stl": box_stl_binary(20.0, 20.0, 20.0),
    "plate-ascii.stl": box_stl_ascii(60.0, 40.0, 3.0),
}


def prices(data: bytes) -> dict[str, str]:
    """Price of one model in every material of the legacy price table, as the MES answers it."""
    geometry = measure_stl(data)
    return {name: str(quote(geometry, material).price_eur) for name, material in MATERIALS.items()}


def main() -> None:
    table = {}
    for name, data in MODELS.items():
        (HERE / name).write_bytes(data)
        geometry = measure_stl(data)
        table[name] = {"format": "ascii" if data.startswith(b"solid") else "binary",
                       "volume_mm3": round(geometry.volume_mm3, 3), "bbox_mm": list(geometry.bbox_mm),
                       "triangles": geometry.triangles, "price_eur": prices(data)}
    (HERE / "prices.json").write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
