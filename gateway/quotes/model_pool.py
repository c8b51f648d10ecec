"""A small pool of model-check processes: STL parsing never runs in the event loop's process.

Each slot is a one-process ``ProcessPoolExecutor`` (spawn context) whose process runs under a
memory limit (``RLIMIT_AS``) and a per-check CPU-time limit (``RLIMIT_CPU``, see
``gateway/quotes/model_worker.py``). One process per slot isolates failures: a model that makes its
process die (SIGXCPU, or the kernel refusing memory) breaks only its own executor, which is
replaced; concurrent checks in other slots carry on. A request waits for a free slot for at most
``timeout`` seconds (then 503 + Retry-After); a check that outlives it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from gateway import metrics
from gateway.errors import GatewayError
from gateway.quotes.model_check import InvalidModel, StlLimits, check_stl_envelope
from gateway.quotes.model_worker import init_worker, run_check, warm

log = logging.getLogger("gateway.quotes")


class ModelCheckBusy(GatewayError):
    """Every model-check process stayed busy (or the check outlived its time)."""

    status = 503
    title = "Model checks busy"
    type_slug = "model-check-busy"


class ModelOverLimits(InvalidModel):
    """The model's check ran out of CPU time or memory: it is refused like a malformed one."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolSettings:
    """The ``quotes:`` keys ``parse_workers``, ``parse_cpu_seconds``, ``parse_memory_bytes``,
    ``parse_timeout`` plus the STL caps."""

    workers: int = 2
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    timeout: float = 30.0
    limits: StlLimits = field(default_factory=StlLimits)


class ModelCheckPool:
    """``await pool.fingerprint(data, material=…, rules_version=…)`` → fingerprint or InvalidModel."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._free: asyncio.Queue[ProcessPoolExecutor] = asyncio.Queue()
        self._all: set[ProcessPoolExecutor] = set()
        self._warming: list[asyncio.Future[int]] = []

    def _new_executor(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(max_workers=1, mp_context=self._context, initializer=init_worker,
                                       initargs=(self.settings.memory_bytes,))
        self._all.add(executor)
        warming = asyncio.wrap_future(executor.submit(warm))
        warming.add_done_callback(_retrieve)  # a failed start shows on the first check instead
        self._warming.append(warming)
        return executor

    def start(self) -> None:
        """Start the processes (in the background: the first check may wait for their imports)."""
        if self._all:
            return
        for _ in range(self.settings.workers):
            self._free.put_nowait(self._new_executor())

    async def aclose(self) -> None:
        """Stop every process."""
        for executor in self._all:
            _kill(executor)
        if self._warming:  # bounded: a process still spawning must not hold the gateway's shutdown
            _, pending = await asyncio.wait(self._warming, timeout=5)
            for future in pending:
                future.cancel()
        self._all.clear()

    def _release(self, executor: ProcessPoolExecutor, done: asyncio.Future[str]) -> None:
        _retrieve(done)  # the caller already has its answer
        self._free.put_nowait(executor)

    def _replace(self, executor: ProcessPoolExecutor) -> None:
        _kill(executor)
        self._all.discard(executor)
        metrics.MODEL_CHECK_RESTARTS.inc()
        self._free.put_nowait(self._new_executor())

    async def fingerprint(self, data: bytes, *, material: str, rules_version: str) -> str:
        """Check ``data`` in a model-check process; outcome and duration go to the metrics."""
        started = time.perf_counter()
        outcome = "error"
        try:
            check_stl_envelope(data, self.settings.limits)  # O(1) caps: no process needed
            result = await self._run(data, material, rules_version)
            outcome = "ok"
            return result
        except ModelOverLimits:
            outcome = "limit"
            raise
        except InvalidModel:
            outcome = "invalid"
            raise
        except ModelCheckBusy:
            outcome = "busy"
            raise
        finally:
            metrics.MODEL_CHECKS.labels(outcome=outcome).inc()
            metrics.MODEL_CHECK_DURATION.labels(outcome=outcome).observe(time.perf_counter() - started)

    async def _run(self, data: bytes, material: str, rules_version: str) -> str:
        s = self.settings
        self.start()  # no-op once started (an app built without QuoteService.start(): tests)
        deadline = asyncio.get_running_loop().time() + s.timeout
        try:
            async with asyncio.timeout_at(deadline):
                executor = await self._free.get()
        except TimeoutError:
            raise ModelCheckBusy(f"no model-check process became free within {s.timeout} s",
                                 retry_after=5) from None
        running = asyncio.wrap_future(
            executor.submit(run_check, data, material, rules_version, s.limits, s.cpu_seconds))
        try:
            async with asyncio.timeout_at(deadline):
                result = await asyncio.shield(running)
        except TimeoutError:
            self._replace(executor)
            log.warning("model check killed after %.0f s", s.timeout,
                        extra={"event.action": "model-check", "event.outcome": "failure",
                               "event.reason": "timeout"})
            raise ModelCheckBusy(f"the model check did not finish within {s.timeout} s",
                                 retry_after=5) from None
        except (BrokenProcessPool, MemoryError) as exc:
            if isinstance(exc, BrokenProcessPool):
                self._replace(executor)
            else:
                self._free.put_nowait(executor)
            log.warning("model check exceeded its limits: %s", type(exc).__name__,
                        extra={"event.action": "model-check", "event.outcome": "failure",
                               "event.reason": "limit"})
            raise ModelOverLimits(f"the model needs more than the analysis limits ({s.cpu_seconds} s CPU, "
                                  f"{s.memory_bytes >> 20} MiB)") from None
        except BaseException:  # the caller went away: the slot is free once its check ends
            running.add_done_callback(lambda done: self._release(executor, done))
            raise
        self._free.put_nowait(executor)
        return result


def _retrieve(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop the executor now, killing its process (a check may be running: no waiting for it)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
