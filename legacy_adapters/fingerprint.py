"""Canonical fingerprint of a mesh: geometrically equivalent uploads price once.

Equivalences we accept, because the legacy price cannot tell them apart:

* the same triangles in another order;
* the vertices of a triangle rotated cyclically (``abc`` → ``bca``): winding, hence the
  sign of the volume, is kept — a *reversed* triangle is not equivalent;
* the whole mesh translated (every coordinate is taken relative to the bounding-box minimum).

**Rotation is deliberately not normalised.** The legacy price depends on the orientation:
machine time counts layers over the bounding-box *height* (``bbox_z / layer_height``), so a
part lying down and the same part standing up get different prices. Treating them as one
model would return a wrong price; canonicalising axes (PCA) is therefore unsound here.

Coordinates are quantised to ``QUANTUM_MM`` (1 µm) before hashing: STL stores float32, so a
translated copy differs in the last bits. Two models closer than that are priced as one.
The material and the pricing-rules version are part of the hash, so a rules change yields
new fingerprints (and thereby invalidates the price cache).
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["FINGERPRINT_VERSION", "QUANTUM_MM", "canonical_triangles", "fingerprint"]

FINGERPRINT_VERSION = "fp1"
QUANTUM_MM = 1e-3


def _lex_less(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise lexicographic ``a < b`` for two (n, k) integer arrays."""
    differ = a != b
    first = differ.argmax(axis=1)
    rows = np.arange(len(a))
    less: np.ndarray = differ.any(axis=1) & (a[rows, first] < b[rows, first])
    return less


def canonical_triangles(triangles: np.ndarray) -> np.ndarray:
    """(n, 9) int64: quantised, translated to the origin, each triangle rotated to its smallest
    cyclic form, rows sorted — identical for every equivalent mesh."""
    points = triangles.reshape(-1, 3)
    origin = points.min(axis=0)
    q = np.rint((triangles - origin) / QUANTUM_MM).astype(np.int64).reshape(-1, 9)
    # the three cyclic rotations of every triangle; keep the lexicographically smallest
    best = q
    for shift in (3, 6):
        candidate = np.roll(q, -shift, axis=1)
        take = _lex_less(candidate, best)
        best = np.where(take[:, None], candidate, best)
    order = np.lexsort(best.T[::-1])  # lexsort's last key is primary
    canonical: np.ndarray = np.ascontiguousarray(best[order])
    return canonical


def fingerprint(triangles: np.ndarray, *, material: str, rules_version: str) -> str:
    """sha256 hex of the canonical mesh + material + pricing-rules version."""
    canonical = canonical_triangles(np.asarray(triangles, dtype=np.float64))
    digest = hashlib.sha256()
    digest.update(f"{FINGERPRINT_VERSION}|{rules_version}|{material.upper()}|{len(canonical)}|".encode())
    digest.update(canonical.astype("<i8").tobytes())
    return digest.hexdigest()
