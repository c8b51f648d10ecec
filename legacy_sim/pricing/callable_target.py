"""The legacy pricing as an importable callable target (the formula of ``legacy_sim.pricing``).

``legacy_sim.pricing.callable_target:price_model`` is what the tests and ``bench/pricing.py`` plug
into the pricing workers (``--backend``) as the "importable Python callable" flavour of the
legacy: it answers ``{"price_eur", "breakdown"}`` like the MES's ``/price``, so it needs nothing
of ``legacy_adapters``. Two environment knobs make it
behave like the real thing for measurements:

* ``PRICING_LOCAL_DELAY`` — seconds each calculation sleeps (the legacy's minutes), default 0;
* ``PRICING_CALL_LOG`` — a file to which one line ``<sha256> <material>`` is appended per
  call, so a test can count legacy calls per distinct model across worker processes.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from legacy_sim.pricing import measure_stl, quote
from legacy_sim.pricing.materials import material_named


def price_model(model: bytes, material: str) -> dict[str, Any]:
    """Measure and price ``model`` like the legacy MES (ValueError = unusable model/material)."""
    sha = hashlib.sha256(model).hexdigest()
    log_path = os.environ.get("PRICING_CALL_LOG")
    if log_path:
        with open(log_path, "a", encoding="ascii") as log:  # O_APPEND: one line per call, atomic
            log.write(f"{sha} {material}\n")
    geometry = measure_stl(model)  # InvalidModel is a ValueError → permanent
    result = quote(geometry, material_named(material))
    delay = float(os.environ.get("PRICING_LOCAL_DELAY", "0") or 0)
    if delay > 0:
        time.sleep(delay)
    breakdown: dict[str, Any] = {
        "volume_mm3": round(geometry.volume_mm3, 3), "surface_area_mm2": round(geometry.surface_area_mm2, 3),
        "bbox_mm": [round(v, 3) for v in geometry.bbox_mm], "triangles": geometry.triangles,
        "material": result.material, "mass_g": result.mass_g, "machine_hours": result.machine_hours,
        "model_sha256": sha}
    return {"price_eur": str(result.price_eur), "breakdown": breakdown}
