"""Checking an uploaded STL model: the one parsing entry point (:func:`parse_stl`) and its caps.

``parse_stl`` is the only function the quote path uses to read STL bytes; it is meant to move to
a shared contracts package unchanged. It runs in a model-check process (``gateway/quotes/model_pool.py``),
never in the event loop's process. Caps, checked before numpy-stl sees the bytes:

* ASCII STL at most ``ascii_max_bytes`` (numpy-stl parses ASCII line by line in Python: ~0.2 s
  per MiB of pathological input such as ``solid facet`` followed by megabytes of newlines), and at
  most ``_LINES_PER_FACET`` lines per ``endfacet`` (so the lines numpy-stl walks are bounded by
  the facets, and a body of blank lines is refused at C speed whatever its size);
* at most ``max_triangles`` triangles, binary (declared count) or ASCII (``endfacet`` count).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from contracts.stl import InvalidModel, load_triangles, looks_ascii, measure
from legacy_adapters.fingerprint import fingerprint

__all__ = ["InvalidModel", "StlLimits", "check_stl_envelope", "model_fingerprint", "parse_stl"]

_HEADER = 80
#: A facet is 7 lines; numpy-stl's cost is per line (Python), whatever the line holds.
_LINES_PER_FACET = 10


@dataclass(frozen=True, kw_only=True, slots=True)
class StlLimits:
    """Caps on one STL model (the ``quotes:`` section's ``ascii_max_bytes``/``max_triangles``)."""

    ascii_max_bytes: int = 8 << 20
    max_triangles: int = 2_000_000


def check_stl_envelope(data: bytes, limits: StlLimits) -> None:
    """The cheap caps (size, declared/counted triangles): InvalidModel when one is exceeded."""
    if looks_ascii(data):
        if len(data) > limits.ascii_max_bytes:
            raise InvalidModel(f"ASCII STL of {len(data)} bytes exceeds {limits.ascii_max_bytes} bytes; "
                               "send binary STL")
        facets = data.lower().count(b"endfacet")
        if facets > limits.max_triangles:
            raise InvalidModel(f"ASCII STL holds {facets} triangles, more than {limits.max_triangles}")
        lines = data.count(b"\n")
        if lines > _LINES_PER_FACET * (facets + 1):
            raise InvalidModel(f"ASCII STL of {lines} lines holds only {facets} facets "
                               f"(at most {_LINES_PER_FACET} lines per facet)")
    elif len(data) >= _HEADER + 4:
        (count,) = struct.unpack_from("<I", data, _HEADER)
        if count > limits.max_triangles:
            raise InvalidModel(f"binary STL declares {count} triangles, more than {limits.max_triangles}")


def parse_stl(data: bytes, limits: StlLimits) -> np.ndarray:
    """STL bytes → (n, 3, 3) float64 triangles of a measurable model, or InvalidModel."""
    check_stl_envelope(data, limits)
    triangles = load_triangles(data)
    if len(triangles) > limits.max_triangles:
        raise InvalidModel(f"STL holds {len(triangles)} triangles, more than {limits.max_triangles}")
    measure(triangles)  # refuses flat/empty/non-finite models like the legacy would
    return triangles


def model_fingerprint(data: bytes, *, material: str, rules_version: str, limits: StlLimits) -> str:
    """Parse and fingerprint in one call, so only a short string leaves the check process."""
    return fingerprint(parse_stl(data, limits), material=material, rules_version=rules_version)
