"""Callable backends for the failure tests (imported by real worker processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from legacy_adapters.backend import PriceResult
from legacy_sim.pricing.callable_target import price_model


def flaky(model: bytes, material: str) -> dict[str, Any]:
    """Fails (transient) while the file named by $PRICING_FAIL_FLAG exists, then prices normally."""
    flag = os.environ.get("PRICING_FAIL_FLAG", "")
    if flag and Path(flag).exists():
        raise ConnectionError("legacy MES unreachable (test flag)")
    return price_model(model, material)


def refuses(model: bytes, material: str) -> PriceResult:
    """A permanent refusal, like a 422 from the legacy."""
    raise ValueError("the legacy cannot manufacture this model")
