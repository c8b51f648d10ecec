"""Which pricing backend a worker runs, from its ``--backend`` spec (docs/pricing.md)."""

from __future__ import annotations

from legacy_adapters.backend import PricingBackend
from legacy_adapters.callable_backend import CallableBackend
from legacy_adapters.http_backend import HttpBackend


def backend_from_spec(spec: str, *, timeout: float = 1800.0) -> PricingBackend:
    """``http(s)://host:port`` → HttpBackend; ``package.module:function`` → CallableBackend."""
    if spec.startswith(("http://", "https://")):
        return HttpBackend(spec, timeout=timeout)
    if ":" in spec and not spec.startswith("/"):
        return CallableBackend(spec)
    raise ValueError(f"backend {spec!r}: expected an http(s):// URL of a legacy MES or module:function")
