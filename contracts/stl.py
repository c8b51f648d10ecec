"""STL model validation and measurement: volume, surface area, bounding box, triangle count.

Shared by the gateway (upload checks, fingerprints) and the legacy stand-in (pricing)."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from stl import mesh as stl_mesh
from stl import stl as stl_format

_HEADER = 80
_COUNT = 4
_RECORD = 50
#: Below this volume (mm³) a model is flat or empty: nothing to manufacture.
MIN_VOLUME_MM3 = 1e-6


class InvalidModel(ValueError):
    """The upload is not a usable STL model (the HTTP layer answers 422)."""


@dataclass(frozen=True, slots=True)
class Geometry:
    """What the legacy measures on every model before pricing it."""

    volume_mm3: float
    surface_area_mm2: float
    bbox_mm: tuple[float, float, float]
    triangles: int


def looks_ascii(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith(b"solid") and b"facet" in data[:4096].lower()


def _check_binary_size(data: bytes) -> None:
    if len(data) < _HEADER + _COUNT:
        raise InvalidModel(f"binary STL needs at least {_HEADER + _COUNT} bytes, got {len(data)}")
    (count,) = struct.unpack_from("<I", data, _HEADER)
    if count == 0:
        raise InvalidModel("STL contains no triangles")
    needed = _HEADER + _COUNT + count * _RECORD
    if len(data) < needed:
        raise InvalidModel(f"binary STL declares {count} triangles but holds only "
                           f"{(len(data) - _HEADER - _COUNT) // _RECORD}")


def load_triangles(data: bytes) -> np.ndarray:
    """Parse binary or ASCII STL bytes with numpy-stl into an (n, 3, 3) float64 array."""
    if not data.strip():
        raise InvalidModel("empty body: an STL model is expected")
    ascii_model = looks_ascii(data)
    if not ascii_model:
        _check_binary_size(data)
    mode = stl_format.Mode.ASCII if ascii_model else stl_format.Mode.BINARY
    try:
        model = stl_mesh.Mesh.from_file("upload.stl", fh=io.BytesIO(data), mode=mode,
                                        calculate_normals=False)
    except (AssertionError, ValueError, RuntimeError, struct.error, IndexError, UnicodeError) as exc:
        raise InvalidModel(f"unreadable STL: {exc}") from None
    if model is None or len(model.vectors) == 0:
        raise InvalidModel("STL contains no triangles")
    return np.asarray(model.vectors, dtype=np.float64)


def measure(triangles: np.ndarray) -> Geometry:
    """Measure a closed triangle mesh; refuse degenerate (flat, empty, non-finite) ones."""
    if not np.isfinite(triangles).all():
        raise InvalidModel("STL contains non-finite coordinates")
    v0, v1, v2 = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    # signed volume of the tetrahedra (origin, v0, v1, v2); abs() tolerates inverted normals
    volume = abs(float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum()) / 6.0)
    area = float(np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1).sum()) / 2.0
    points = triangles.reshape(-1, 3)
    extent = points.max(axis=0) - points.min(axis=0)
    if volume < MIN_VOLUME_MM3 or area <= 0.0:
        raise InvalidModel(f"degenerate model: volume {volume:.6g} mm³, area {area:.6g} mm²")
    bbox = (float(extent[0]), float(extent[1]), float(extent[2]))
    return Geometry(volume_mm3=volume, surface_area_mm2=area, bbox_mm=bbox, triangles=len(triangles))


def measure_stl(data: bytes) -> Geometry:
    """Parse and measure an STL upload (CPU-bound: run it in a worker thread)."""
    return measure(load_triangles(data))
