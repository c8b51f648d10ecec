"""The one interface through which the legacy price calculation is called.

Queue and workers only ever see :class:`PricingBackend`; which implementation sits behind
it (HTTP to a legacy MES, or an importable Python callable) is decided by one spec string
in configuration (:func:`legacy_adapters.backend_spec.backend_from_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

__all__ = ["BackendUnavailableError", "PermanentPricingError", "PriceResult", "PricingBackend",
           "PricingError", "TransientPricingError"]


class PricingError(Exception):
    """The legacy calculation did not produce a price."""


class TransientPricingError(PricingError):
    """Worth retrying: legacy unreachable, overloaded (5xx/503), timed out."""


class BackendUnavailableError(TransientPricingError):
    """The legacy cannot serve now: never reached (connection refused, or its sidecar could not
    connect either), or it answered 503 itself (e.g. its database is down).

    The job had no part in it: the worker hands the job back without counting the attempt and
    pauses itself, so an instance that is down does not use up the jobs' attempts.
    """


class PermanentPricingError(PricingError):
    """Retrying cannot help: the legacy refused the model or the material (4xx)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PriceResult:
    """A finished legacy calculation: the price and what it was computed from."""

    price_eur: Decimal
    breakdown: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The stored/returned form (price as a decimal string: money is never a float)."""
        return {"price_eur": str(self.price_eur), "breakdown": self.breakdown}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PriceResult:
        """Inverse of :meth:`as_json`; also accepts the legacy MES ``/price`` body."""
        if "price_eur" not in data:
            raise PermanentPricingError(f"no price_eur in legacy answer: {sorted(data)}")
        breakdown = data.get("breakdown")
        if breakdown is None:  # the MES body: everything but the price is the breakdown
            breakdown = {k: v for k, v in data.items() if k != "price_eur"}
        return cls(price_eur=Decimal(str(data["price_eur"])), breakdown=dict(breakdown))


@runtime_checkable
class PricingBackend(Protocol):
    """Price one model in one material; raise Transient/PermanentPricingError on failure."""

    async def price(self, model: bytes, *, material: str) -> PriceResult:
        """Run the legacy calculation for ``model`` (STL bytes)."""
        ...

    async def aclose(self) -> None:
        """Release connections/threads."""
        ...
