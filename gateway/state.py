"""The live gateway state shared by listeners and admin; replaced as a whole on reload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config import GatewayConfig
from gateway.route_table import RouteTable
from gateway.upstreams.manager import ClusterManager


@dataclass(kw_only=True)
class GatewayState:
    """Mutable holder: ``config``/``tables`` are swapped atomically by a SIGHUP reload."""

    config: GatewayConfig
    clusters: ClusterManager
    tables: dict[str, RouteTable] = field(default_factory=dict)
    tracer_provider: Any = None  # an OpenTelemetry TracerProvider, or None when tracing is off
    draining: bool = False
    reloads: int = 0

    def apply(self, config: GatewayConfig) -> None:
        """Install a validated config's route tables (clusters are reloaded separately)."""
        self.config = config
        self.tables = {name: RouteTable(config.routes_for(name)) for name in config.listeners}

    @property
    def ready(self) -> bool:
        """Ready = config loaded, not draining, every routed cluster has a healthy endpoint."""
        if self.draining:
            return False
        needed = {route.cluster for route in self.config.routes if route.handler is None}
        return all(self.clusters.get(name).healthy_endpoints > 0 for name in needed)
