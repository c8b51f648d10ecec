"""Typed, validated settings of one legacy MES instance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class MesConfig:
    """Everything one MES process needs; checked on construction so bad values fail at start-up."""

    dsn: str
    instance_id: str = "mes-1"
    pool_min_size: int = 2
    pool_max_size: int = 10
    statement_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    startup_wait_s: float = 30.0
    health_timeout_s: float = 1.0
    price_delay_s: float = 0.5
    price_delay_per_ktri_s: float = 0.0
    price_slots: int = 4
    request_delay_s: float = 0.0  # every API answer this much later: an overloaded legacy MES
    max_model_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        checks = {
            "dsn": bool(self.dsn),
            "instance_id": bool(self.instance_id),
            "pool_min_size": self.pool_min_size >= 0,
            "pool_max_size": self.pool_max_size >= max(1, self.pool_min_size),
            "statement_timeout_s": self.statement_timeout_s > 0,
            "connect_timeout_s": self.connect_timeout_s > 0,
            "startup_wait_s": self.startup_wait_s >= 0,
            "health_timeout_s": self.health_timeout_s > 0,
            "price_delay_s": self.price_delay_s >= 0,
            "price_delay_per_ktri_s": self.price_delay_per_ktri_s >= 0,
            "price_slots": self.price_slots >= 0,
            "request_delay_s": self.request_delay_s >= 0,
            "max_model_bytes": self.max_model_bytes > 0,
            "max_json_bytes": self.max_json_bytes > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid MES setting(s): {', '.join(bad)}")

    def price_delay_for(self, triangles: int) -> float:
        """Seconds the legacy spends on a model of ``triangles`` triangles (beyond real CPU work)."""
        return self.price_delay_s + self.price_delay_per_ktri_s * triangles / 1000.0
