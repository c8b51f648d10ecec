"""STL models partners ask quotes for: a shared catalogue (re-quotes) and fresh one-offs.

Boxes from ``legacy_sim.pricing.samples`` — the same parser and price rules as the legacy, small
enough (684 bytes) that uploading is never what a run measures. Catalogue models are identical
bytes on every request, so the platform's price cache and in-flight dedup see them as repeats —
per partner (dedup is scoped per owner: each partner prices a catalogue model once).
"""

from __future__ import annotations

import functools
import random

from legacy_sim.pricing.samples import box_stl_binary


@functools.cache
def catalogue_model(index: int) -> bytes:
    """Model ``index`` of the shared catalogue (deterministic sizes, 10-60 mm)."""
    rng = random.Random(index)
    return box_stl_binary(*(round(rng.uniform(10, 60), 1) for _ in range(3)))


def fresh_model(rng: random.Random) -> bytes:
    """A one-off model (0.01 mm resolution: practically never seen before)."""
    return box_stl_binary(*(round(rng.uniform(5, 120), 2) for _ in range(3)))


def pick_model(rng: random.Random, *, repeat_share: float, catalogue_size: int) -> bytes:
    """A catalogue model with probability ``repeat_share``, else a fresh one."""
    if catalogue_size > 0 and rng.random() < repeat_share:
        return catalogue_model(rng.randrange(catalogue_size))
    return fresh_model(rng)
