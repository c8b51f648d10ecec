"""Legacy pricing as an importable Python callable ``package.module:function``.

The function takes ``(model: bytes, material: str)`` and returns a :class:`PriceResult` or a
dict with ``price_eur`` (and optionally ``breakdown``). Plain functions run on a worker thread
(the legacy library blocks); ``async def`` functions are awaited. ``ValueError`` from the
function means the model/material is unusable (permanent); ``ConnectionError``/``TimeoutError``
are transient; anything else is treated as transient too (retried, then dead-lettered).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from legacy_adapters.backend import PermanentPricingError, PriceResult, PricingError, TransientPricingError


def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` (ValueError names what is wrong)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"callable {spec!r}: expected module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"callable {spec!r}: cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"callable {spec!r}: {module_name} has no {attr}")
    if not callable(target):
        raise ValueError(f"callable {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


class CallableBackend:
    """Calls the configured function; the queue and workers cannot tell it from HTTP."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._function = load_callable(spec)
        self._is_async = inspect.iscoroutinefunction(self._function)

    async def price(self, model: bytes, *, material: str) -> PriceResult:
        """Run the function and normalise its answer/errors."""
        try:
            if self._is_async:
                raw = await self._function(model, material)
            else:
                raw = await asyncio.to_thread(self._function, model, material)
        except PricingError:
            raise
        except ValueError as exc:
            raise PermanentPricingError(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # a legacy library may raise anything: retry, then dead-letter
            raise TransientPricingError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(raw, PriceResult):
            return raw
        if isinstance(raw, dict):
            return PriceResult.from_json(raw)
        raise PermanentPricingError(f"{self.spec} returned {type(raw).__name__}, not a PriceResult/dict")

    async def aclose(self) -> None:
        """Nothing to release."""
