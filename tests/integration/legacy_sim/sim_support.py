"""Shared test data for the legacy stand-in tests (a plain module: conftest names are not unique)."""

from __future__ import annotations

from legacy_sim.mes import MesConfig

ORDER = {"customer": "Acme GmbH", "material": "PLA", "quantity": 3, "model_name": "bracket.stl"}


def mes_config(dsn: str, **overrides: object) -> MesConfig:
    """Test settings: no legacy delay, small pool, fast start-up failure."""
    settings: dict[str, object] = {"dsn": dsn, "price_delay_s": 0.0, "pool_min_size": 1, "pool_max_size": 12,
                                   "startup_wait_s": 5.0, "instance_id": "mes-test"}
    settings.update(overrides)
    return MesConfig(**settings)  # type: ignore[arg-type]
