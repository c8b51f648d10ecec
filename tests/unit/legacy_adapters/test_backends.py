"""The backend interface: spec parsing, the callable flavour, result normalisation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from legacy_adapters.backend import (
    PermanentPricingError,
    PriceResult,
    PricingBackend,
    TransientPricingError,
)
from legacy_adapters.backend_spec import backend_from_spec
from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.http_backend import HttpBackend
from legacy_sim.pricing.samples import box_stl_binary


def test_spec_chooses_the_implementation() -> None:
    assert isinstance(backend_from_spec("http://mes:9101"), HttpBackend)
    local = backend_from_spec("legacy_sim.pricing.callable_target:price_model")
    assert isinstance(local, CallableBackend)
    assert isinstance(local, PricingBackend)
    with pytest.raises(ValueError, match="module:function"):
        backend_from_spec("/usr/bin/price")
    with pytest.raises(ValueError, match="cannot import"):
        backend_from_spec("no_such_module:f")


async def test_local_callable_prices_like_the_legacy() -> None:
    result = await CallableBackend("legacy_sim.pricing.callable_target:price_model").price(
        box_stl_binary(), material="PLA")
    assert result.price_eur == Decimal("15.72")
    assert result.breakdown["triangles"] == 12


async def test_callable_errors_are_classified() -> None:
    backend = CallableBackend("legacy_sim.pricing.callable_target:price_model")
    with pytest.raises(PermanentPricingError):
        await backend.price(b"garbage", material="PLA")
    with pytest.raises(PermanentPricingError):
        await backend.price(box_stl_binary(), material="GOLD")
    with pytest.raises(TransientPricingError):
        await CallableBackend("builtins:divmod").price(b"x", material="PLA")


def test_result_reads_the_mes_price_body() -> None:
    r = PriceResult.from_json({"price_eur": 15.72, "volume_mm3": 1000.0, "material": "PLA"})
    assert r.price_eur == Decimal("15.72")
    assert r.breakdown == {"volume_mm3": 1000.0, "material": "PLA"}
    assert PriceResult.from_json(r.as_json()) == r
