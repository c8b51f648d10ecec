"""Shared test data for the legacy stand-in tests (a plain module: conftest names are not unique)."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import REGISTRY

from legacy_sim.mes import MesConfig
from telemetry import EcsJsonFormatter, RedactingFilter

ORDER = {"customer": "Acme GmbH", "material": "PLA", "quantity": 3, "model_name": "bracket.stl"}


def mes_config(dsn: str, **overrides: object) -> MesConfig:
    """Test settings: no legacy delay, small pool, fast start-up failure."""
    settings: dict[str, object] = {"dsn": dsn, "price_delay_s": 0.0, "pool_min_size": 1, "pool_max_size": 12,
                                   "startup_wait_s": 5.0, "instance_id": "mes-test"}
    settings.update(overrides)
    return MesConfig(**settings)  # type: ignore[arg-type]


class JsonLog:
    """Every log line of the ``legacy_sim`` loggers, formatted as in production (ECS JSON)."""

    def __init__(self) -> None:
        self._stream = io.StringIO()
        self._handler = logging.StreamHandler(self._stream)
        self._handler.setFormatter(EcsJsonFormatter("legacy-test"))
        self._handler.addFilter(RedactingFilter())
        self._logger = logging.getLogger("legacy_sim")
        self._level = self._logger.level

    def __enter__(self) -> JsonLog:
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    def lines(self) -> list[dict[str, object]]:
        """Every line so far, parsed."""
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def events(self, action: str) -> list[dict[str, object]]:
        """The lines whose ``event.action`` is ``action``."""
        return [line for line in self.lines() if line.get("event.action") == action]


def sample(name: str, **labels: str) -> float:
    """Current value of a metric sample on the default registry (0.0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
