"""ClusterManager: the named clusters of one gateway process, with graceful reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from gateway import metrics
from gateway.upstreams.cluster import Cluster
from gateway.upstreams.config import ClusterConfig

__all__ = ["ClusterManager"]

log = logging.getLogger("gateway.upstreams")


class ClusterManager:
    """Builds, starts, looks up, reloads and closes clusters by name.

    ``reload`` keeps clusters whose config is equal, starts new/changed ones and
    swaps them in at once; replaced clusters are retired in the background: they
    stop health checks, let in-flight requests finish for up to ``drain_seconds``
    seconds (default: their own overall timeout) and are then closed.
    """

    def __init__(self, configs: Mapping[str, ClusterConfig]) -> None:
        self._clusters: dict[str, Cluster] = {name: Cluster(cfg) for name, cfg in configs.items()}
        self._retiring: set[asyncio.Task[None]] = set()
        self._started = False

    async def start(self) -> None:
        """Start every cluster (open sessions, start health checks)."""
        for cluster in self._clusters.values():
            await cluster.start()
        self._started = True

    def get(self, name: str) -> Cluster:
        """The cluster named ``name``; ``KeyError`` if unknown (routes are validated at load)."""
        return self._clusters[name]

    def __contains__(self, name: object) -> bool:
        return name in self._clusters

    @property
    def names(self) -> frozenset[str]:
        """Names of the current clusters."""
        return frozenset(self._clusters)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state of every cluster, by name."""
        return {name: cluster.snapshot() for name, cluster in sorted(self._clusters.items())}

    async def reload(
        self, configs: Mapping[str, ClusterConfig], *, drain_seconds: float | None = None
    ) -> None:
        """Apply new cluster configs; returns once the new set serves (old ones drain later)."""
        old = self._clusters
        new: dict[str, Cluster] = {}
        fresh: list[Cluster] = []
        for name, cfg in configs.items():
            current = old.get(name)
            if current is not None and current.config == cfg:
                new[name] = current
            else:
                new[name] = Cluster(cfg)
                fresh.append(new[name])
        replaced = [cluster for name, cluster in old.items() if new.get(name) is not cluster]
        if self._started:
            try:
                for cluster in fresh:
                    await cluster.start()
            except BaseException:
                for cluster in fresh:
                    await cluster.aclose()
                raise
        for cluster in replaced:
            cluster.retire()  # the replacement owns the gauges from now on
            successor = new.get(cluster.name)
            self._forget_metrics(cluster.config, successor.config if successor else None)
        self._clusters = new
        for cluster in replaced:
            grace = drain_seconds if drain_seconds is not None else cluster.config.timeouts.overall
            task = asyncio.create_task(self._retire(cluster, grace), name=f"retire-cluster:{cluster.name}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        log.info(
            "clusters reloaded: %d kept, %d started, %d retired",
            len(new) - len(fresh), len(fresh), len(replaced),
            extra={"event.action": "clusters-reloaded"},
        )

    async def wait_retired(self) -> None:
        """Wait until every retired cluster has drained and closed."""
        while self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every cluster, including ones still draining after a reload."""
        for task in list(self._retiring):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.wait_retired()
        for cluster in self._clusters.values():
            await cluster.aclose()
        self._started = False

    async def _retire(self, cluster: Cluster, grace_seconds: float) -> None:
        try:
            idle = await cluster.drain(grace_seconds)
            if not idle:
                log.warning(
                    "cluster %s closed with requests still in flight after %.1fs drain",
                    cluster.name, grace_seconds,
                    extra={"cluster": cluster.name, "event.action": "cluster-drain-timeout"},
                )
        finally:
            await cluster.aclose()

    @staticmethod
    def _forget_metrics(old: ClusterConfig, new: ClusterConfig | None) -> None:
        """Drop gauge series of removed endpoints/clusters so dashboards show no ghosts.

        prometheus_client cannot remove series in multiprocess mode (it warns and
        keeps them); there the ghosts last until the worker restarts.
        """
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            return
        kept = set(new.endpoints) if new is not None else set()
        for endpoint in old.endpoints:
            if endpoint in kept:
                continue
            for gauge in (metrics.UPSTREAM_ENDPOINT_HEALTHY, metrics.UPSTREAM_ENDPOINT_EJECTED):
                with contextlib.suppress(KeyError):
                    gauge.remove(old.name, endpoint)
        if new is None:
            with contextlib.suppress(KeyError):
                metrics.UPSTREAM_HEALTHY_ENDPOINTS.remove(old.name)
