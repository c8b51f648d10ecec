"""The legacy synchronous price calculation: real geometry work, then the legacy's minutes.

No cache — the legacy recomputes every model every time. A fixed number of
calculation slots models the legacy's worker threads (requests beyond them
wait). Each running calculation has a ``price_calculations`` row with
``finished_at IS NULL`` so a database probe can count them across instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from legacy_sim.events import log_event, since_ns
from legacy_sim.mes.config import MesConfig
from legacy_sim.pricing import Geometry, Material, Quote, measure_stl, quote
from legacy_sim.problem import STORE_ERRORS, log_store_error

logger = logging.getLogger("legacy_sim.mes.pricing")


@dataclass(frozen=True, slots=True)
class PriceResult:
    """A finished calculation as the API reports it."""

    geometry: Geometry
    quote: Quote
    model_sha256: str
    duration_ms: int

    def as_json(self) -> dict[str, object]:
        """The ``POST /price`` response body."""
        g = self.geometry
        return {"volume_mm3": round(g.volume_mm3, 3), "surface_area_mm2": round(g.surface_area_mm2, 3),
                "bbox_mm": [round(v, 3) for v in g.bbox_mm], "triangles": g.triangles,
                "material": self.quote.material, "mass_g": self.quote.mass_g,
                "machine_hours": self.quote.machine_hours, "price_eur": float(self.quote.price_eur),
                "model_sha256": self.model_sha256, "duration_ms": self.duration_ms}


class PricingService:
    """Runs calculations and counts them (``in_progress``, ``waiting``) for this process."""

    def __init__(self, pool: asyncpg.Pool, config: MesConfig) -> None:
        self._pool = pool
        self._config = config
        self._slots = asyncio.Semaphore(config.price_slots) if config.price_slots else None
        self.in_progress = 0
        self.waiting = 0
        self.completed = 0
        self.failed = 0

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self._slots is None:
            yield
            return
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def calculate(self, model: bytes, material: Material, *,
                        order_id: int | None = None) -> PriceResult:
        """Measure and price ``model``; raises ``InvalidModel`` for unusable uploads."""
        started = time.perf_counter_ns()
        sha = await asyncio.to_thread(lambda: hashlib.sha256(model).hexdigest())
        async with self._slot():
            self.in_progress += 1
            calc_id = await self._pool.fetchval(
                "INSERT INTO price_calculations (instance_id, model_sha256, material, order_id) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                self._config.instance_id, sha, material.name, order_id)
            outcome, triangles = "failure", None
            try:
                geometry = await asyncio.to_thread(measure_stl, model)
                triangles = geometry.triangles
                result_quote = quote(geometry, material)
                await asyncio.sleep(self._config.price_delay_for(geometry.triangles))
                outcome = "success"
            finally:
                self.in_progress -= 1
                self.completed += outcome == "success"
                self.failed += outcome != "success"
                await self._finish(calc_id, outcome, triangles)
        duration = since_ns(started)
        log_event(logger, f"price {result_quote.price_eur} EUR for {sha[:12]} ({material.name})",
                  action="price-calculated", duration_ns=duration,
                  fields={"order.id": order_id, "model.sha256": sha, "model.triangles": triangles,
                          "price.material": material.name, "price.eur": float(result_quote.price_eur)})
        return PriceResult(geometry=geometry, quote=result_quote, model_sha256=sha,
                           duration_ms=duration // 1_000_000)

    async def _finish(self, calc_id: int, outcome: str, triangles: int | None) -> None:
        try:
            await self._pool.execute("UPDATE price_calculations SET finished_at = now(), outcome = $2, "
                                     "triangles = $3 WHERE id = $1", calc_id, outcome, triangles)
        except STORE_ERRORS as exc:  # the calculation itself is done; the probe row stays open
            log_store_error(logger, exc, f"could not close price calculation {calc_id}: {exc}",
                            {"price.calculation_id": calc_id})


async def close_abandoned_calculations(pool: asyncpg.Pool, instance_id: str) -> int:
    """Mark calculations this instance left open (it crashed mid-way) as failed; returns how many."""
    status = await pool.execute("UPDATE price_calculations SET finished_at = now(), outcome = 'failure' "
                                "WHERE instance_id = $1 AND finished_at IS NULL", instance_id)
    return int(status.split()[-1])
