"""Small STL models built in code (tests, demos, load tests): an axis-aligned box."""

from __future__ import annotations

import numpy as np
from stl import mesh as stl_mesh

# the 12 outward-facing triangles of a unit cube, as corner indices
_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
_FACES = np.array([
    [0, 1, 3], [0, 3, 2],  # x = 0
    [4, 6, 7], [4, 7, 5],  # x = 1
    [0, 4, 5], [0, 5, 1],  # y = 0
    [2, 3, 7], [2, 7, 6],  # y = 1
    [0, 2, 6], [0, 6, 4],  # z = 0
    [1, 5, 7], [1, 7, 3],  # z = 1
])


def box_triangles(x: float, y: float, z: float) -> np.ndarray:
    """The (12, 3, 3) triangles of an ``x x y x z`` mm box with a corner at the origin."""
    scaled: np.ndarray = _CORNERS[_FACES] * np.array([x, y, z], dtype=np.float64)
    return scaled


def box_stl_binary(x: float = 10.0, y: float = 10.0, z: float = 10.0) -> bytes:
    """A binary STL of an ``x x y x z`` mm box."""
    model = stl_mesh.Mesh(np.zeros(12, dtype=stl_mesh.Mesh.dtype))
    model.vectors[:] = box_triangles(x, y, z)
    model.update_normals()
    header = b"legacy_sim box".ljust(80, b" ")
    count = np.uint32(len(model.data)).tobytes()
    return header + count + model.data.tobytes()


def box_stl_ascii(x: float = 10.0, y: float = 10.0, z: float = 10.0) -> bytes:
    """An ASCII STL of an ``x x y x z`` mm box."""
    lines = ["solid box"]
    for tri in box_triangles(x, y, z):
        normal = np.cross(tri[1] - tri[0], tri[2] - tri[0])
        normal = normal / np.linalg.norm(normal)
        lines.append("  facet normal {:e} {:e} {:e}".format(*normal))
        lines.append("    outer loop")
        lines.extend("      vertex {:e} {:e} {:e}".format(*vertex) for vertex in tri)
        lines.append("    endloop")
        lines.append("  endfacet")
    lines.append("endsolid box")
    return ("\n".join(lines) + "\n").encode()


def flat_stl_binary(triangles: int = 4) -> bytes:
    """A degenerate binary STL: all triangles lie in the plane z = 0 (no volume)."""
    tris = np.zeros((triangles, 3, 3))
    tris[:, 1, 0] = 10.0
    tris[:, 2, 1] = 10.0
    data = np.zeros(triangles, dtype=stl_mesh.Mesh.dtype)
    data["vectors"] = tris
    return b" " * 80 + np.uint32(triangles).tobytes() + data.tobytes()
