"""Runs one database probe step with its duration, error count and last-success time.

A failed step (database down, statement timeout, replica conflict) is logged once
per outage and counted; the gauges it feeds keep their last values, and
``sidecar_probe_last_success_timestamp_seconds`` shows how old they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from sidecar import metrics

logger = logging.getLogger("sidecar.probes")

#: What a probe may fail with: the database, the network, our own timeouts, and asyncpg's
#: InternalClientError ("cannot switch to state …; another operation is in progress"): a server shut
#: down while a probe query was in flight leaves the pooled connection so, and letting it escape
#: would end the probe loop for good (found in the failover drill, test_replica_failover.py).
PROBE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
                                                 TimeoutError, asyncpg.InternalClientError)


class ProbeRunner:
    """Times and guards probe steps for one sidecar (``kind``/``instance`` labels)."""

    def __init__(self, *, kind: str, instance: str) -> None:
        self._labels = {"kind": kind, "legacy_instance": instance}
        self._failing: set[str] = set()

    def declare(self, *probes: str) -> None:
        """Export ``sidecar_probe_errors_total`` at 0 for ``probes`` before they first run.

        ``rate()``/``increase()`` need a sample before the first failure, or SidecarProbeErrors
        misses it.
        """
        for probe in probes:
            metrics.PROBE_ERRORS.labels(**self._labels, probe=probe)

    async def run(self, probe: str, step: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``step``; True on success. Never raises the errors of :data:`PROBE_ERRORS`."""
        started = time.perf_counter()
        try:
            await step()
        except PROBE_ERRORS as exc:
            metrics.PROBE_ERRORS.labels(**self._labels, probe=probe).inc()
            if probe not in self._failing:
                self._failing.add(probe)
                logger.warning("probe %s failed: %s: %s", probe, type(exc).__name__, exc,
                               extra={"event.action": "probe", "event.outcome": "failure"})
            return False
        finally:
            metrics.PROBE_DURATION.labels(**self._labels, probe=probe).observe(time.perf_counter() - started)
        if probe in self._failing:
            self._failing.discard(probe)
            logger.info("probe %s works again", probe, extra={"event.action": "probe"})
        metrics.PROBE_LAST_SUCCESS.labels(**self._labels, probe=probe).set(time.time())
        return True

    @property
    def failing(self) -> frozenset[str]:
        """Probes whose last run failed."""
        return frozenset(self._failing)
