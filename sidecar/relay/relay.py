"""The CRM → MES relay: reads ``crm:orders`` as group ``mes-relay`` and delivers with backpressure.

One dispatcher task reads entries and starts one delivery task per entry, but only when the
adaptive limiter (``resilience.adaptive``, following the MES's latency) has a free slot:
waiting for a slot *is* the backpressure, nothing is shed. Failed deliveries stay pending and
feed the :class:`~sidecar.relay.gate.PauseGate`; when it opens the dispatcher stops reading,
waits out the backoff, then sends one probe delivery and resumes on success.

Acknowledgement: an entry is ``XACK``-ed only after the MES answered 2xx for it (``201`` created,
``200`` the MES already had it), in one ``MULTI`` with a ``DELIVERED`` entry (CRM order id → MES
order id) on the CRM's status stream (``contracts.crm_status``). Everything else leaves it
pending: own pending entries are swept every ``sweep_interval`` (and after a pause); those of a
crashed relay are claimed after ``reclaim_idle`` (``XAUTOCLAIM``). Creation is idempotent by CRM
order id, so a redelivery never duplicates an order. Poison entries (and orders the MES rejects
with 4xx) are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp
from opentelemetry import trace

from contracts.crm_envelope import CrmOrderMessage, PoisonMessage, parse_message, utc_now_iso
from contracts.crm_queue import ConsumerStats
from contracts.crm_status import DeliveryStatus
from resilience.adaptive import AdaptiveLimiter, GradientLimit
from resilience.backoff import Backoff
from resilience.cancellation import stop_requested
from resilience.shedding import LoadShed
from sharedstate.errors import REDIS_ERRORS
from sharedstate.redis_spec import AnyRedis
from sidecar.relay import metrics
from sidecar.relay.config import RelayConfig
from sidecar.relay.delivery import DeliveryResult, MesDelivery
from sidecar.relay.gate import GateState, PauseGate
from sidecar.relay.queue import Entry, RelayQueue
from telemetry import consumer_span, order_id_var, request_id_var

logger = logging.getLogger("sidecar.relay")


def _log(message: str, *, action: str, outcome: str = "success", level: int = logging.INFO,
         **fields: object) -> None:
    extra: dict[str, object] = {"event.action": action, "event.outcome": outcome}
    extra.update({key.replace("__", "."): value for key, value in fields.items() if value is not None})
    logger.log(level, message, extra=extra)


def build_limiter(config: RelayConfig, name: str) -> AdaptiveLimiter:
    """A limiter that makes the dispatcher wait rather than shed (it is the only caller)."""
    limit = GradientLimit(initial_limit=config.initial_in_flight, min_limit=config.min_in_flight,
                          max_limit=config.max_in_flight)
    return AdaptiveLimiter(limit, max_queue=1, max_wait=config.delivery_timeout + 1.0, name=name,
                           sample_window=config.limit_sample_window)


class CrmRelay:
    """Build it, ``await run()`` in a task; cancel the task to stop (deliveries get ``drain_timeout``)."""

    def __init__(self, client: AnyRedis, session: aiohttp.ClientSession, mes_url: str,
                 config: RelayConfig, *, instance: str,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.config = config
        self.queue = RelayQueue(client, config)
        self.delivery = MesDelivery(session, mes_url, path=config.orders_path,
                                    timeout=config.delivery_timeout, tracer_provider=tracer_provider)
        self.limiter = build_limiter(config, f"relay-{instance}")
        self.gate = PauseGate(failure_threshold=config.failure_threshold,
                              backoff_initial=config.backoff_initial, backoff_max=config.backoff_max)
        self.stats = ConsumerStats()  # Prometheus has the same
        self._tracer_provider = tracer_provider
        self._tasks: set[asyncio.Task[DeliveryResult]] = set()
        self._in_flight: set[str] = set()  # entry ids being delivered: never sent twice at once
        self._sweep_from: str | None = "0"  # own pending entries first (a previous run's, failures)
        self._claim_cursor: str | None = "0-0"
        self._next_sweep = self._next_claim = 0.0
        self._m = metrics.RelayMetrics.for_instance(instance)
        self._m.limit.set(self.limiter.limit)
        self._m.paused.set(0)

    def status(self) -> dict[str, object]:
        """For ``/readyz``: paused or not, current limit, deliveries in flight."""
        return {"paused": self.gate.paused, "state": self.gate.state.value, "limit": self.limiter.limit,
                "in_flight": self.limiter.in_flight}

    # ------------------------------------------------------------ dispatcher

    async def run(self) -> None:
        """Relay until cancelled; Redis outages are waited out, MES outages pause deliveries."""
        lag_task = asyncio.get_running_loop().create_task(self._lag_loop(), name="relay-lag")
        backoff = Backoff(base=self.config.backoff_initial, cap=self.config.backoff_max)
        try:
            while not stop_requested():
                try:
                    await self._step()
                    backoff.reset()
                except REDIS_ERRORS as exc:
                    if stop_requested():
                        raise asyncio.CancelledError from exc
                    self._queue_error(exc, "CRM queue read failed")
                except Exception as exc:  # a bug must not silently end the relay
                    logger.exception("relay internal error: %s", type(exc).__name__,
                                     extra={"event.action": "internal-error", "event.outcome": "failure"})
                else:
                    continue
                self._sweep_from, self._claim_cursor = "0", None  # re-create the group, re-read own
                self._next_claim = 0.0
                await asyncio.sleep(backoff.next_delay())
        finally:
            lag_task.cancel()
            await asyncio.wait({lag_task}, timeout=1.0)  # never hang a shutdown on a metrics refresh
            await self._drain()
        raise asyncio.CancelledError  # the loop only ends when this task is being cancelled

    async def _step(self) -> None:
        if self.gate.state is GateState.OPEN:
            await self.gate.wait_for_probe()
            self._sweep_from = "0"  # the probe is the oldest failed entry
            return
        entries, source = await self._next_entries()
        await self._dispatch(entries, source)

    async def _next_entries(self) -> tuple[list[Entry], str | None]:
        """Claimed stale entries when due, else own pending when due, else new ones (blocking)."""
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.config.reclaim_idle / 2
            await self.queue.ensure_group()
            self._claim_cursor = "0-0"
        if self._claim_cursor is not None:
            cursor, entries = await self.queue.claim_stale(self._claim_cursor, self.config.batch)
            self._claim_cursor = None if cursor == "0-0" else cursor
            if entries:
                _log(f"claimed {len(entries)} stale entries", action="crm-relay-reclaim",
                     messaging__batch__message_count=len(entries))
            return entries, "claimed"
        if self._sweep_from is None and now >= self._next_sweep:
            self._sweep_from = "0"
        if self._sweep_from is not None:
            entries = await self.queue.read_own_pending(self._sweep_from, self.config.batch)
            if entries:
                self._sweep_from = entries[-1][0]
            else:
                self._sweep_from, self._next_sweep = None, now + self.config.sweep_interval
            return entries, "own"
        free = self.limiter.limit - self.limiter.in_flight
        count = 1 if self.gate.paused else max(1, min(self.config.batch, free))
        return await self.queue.read_new(count, self.config.block_ms), None

    async def _dispatch(self, entries: list[Entry], source: str | None) -> None:
        for entry_id, fields in entries:
            if entry_id in self._in_flight:
                continue
            if self.gate.state is GateState.OPEN:
                return  # the rest stay pending: swept after the pause
            if source is not None:
                self.stats.redelivered += 1
                self._m.redelivered(source)
            if fields is None:  # deleted from the stream while pending: nothing to deliver
                await self.queue.ack(entry_id)
                continue
            try:
                message = parse_message(fields)
            except PoisonMessage as exc:
                with self._span(entry_id, fields):
                    await self._dead_letter(entry_id, fields, str(exc), reason="poison")
                continue
            started = await self._acquire()
            if self.gate.state is GateState.HALF_OPEN:
                await self._probe(entry_id, fields, message, started)
            else:
                self._start(entry_id, fields, message, started)

    async def _acquire(self) -> float:
        while True:
            try:
                return await self.limiter.acquire()
            except LoadShed:  # cannot happen with one caller and max_wait > timeout; wait anyway
                await asyncio.sleep(0.05)

    async def _probe(self, entry_id: str, fields: Mapping[bytes, bytes], message: CrmOrderMessage,
                     started: float) -> None:
        task = self._start(entry_id, fields, message, started)  # own task: own log context
        result = await asyncio.shield(task)
        self.gate.probe_result(result.answered, retry_after=result.retry_after)
        if self.gate.state is GateState.CLOSED:
            self._m.paused.set(0)
            _log("MES answers again: relay resumed", action="crm-relay-resume",
                 crm__order_id=message.crm_order_id, order__id=result.order_id)
        else:
            self._paused(result, message, probe=True)

    def _start(self, entry_id: str, fields: Mapping[bytes, bytes], message: CrmOrderMessage,
               started: float) -> asyncio.Task[DeliveryResult]:
        task = asyncio.get_running_loop().create_task(self._deliver(entry_id, fields, message, started),
                                                      name=f"relay-{entry_id}")
        self._tasks.add(task)
        task.add_done_callback(self._delivery_done)
        return task

    def _delivery_done(self, task: asyncio.Task[DeliveryResult]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:  # a bug: log, entry stays pending
            logger.error("relay delivery failed: %s", type(exc).__name__, exc_info=exc,
                         extra={"event.action": "internal-error", "event.outcome": "failure"})

    # ------------------------------------------------------------ one delivery

    async def _deliver(self, entry_id: str, fields: Mapping[bytes, bytes], message: CrmOrderMessage,
                       started: float) -> DeliveryResult:
        """Deliver one entry (its own task, so ``order.id`` and the span stay with it).

        The limiter slot is returned as soon as the MES answered (its latency is the sample); the
        entry id stays marked in flight until it is acknowledged or left pending.
        """
        self._in_flight.add(entry_id)
        self._m.in_flight.inc()
        request_id = f"relay-{uuid.uuid4().hex}"
        request_id_var.set(request_id)
        try:
            with self._span(entry_id, fields) as span:
                result = await self._call(message, request_id, started)
                if span.is_recording() and result.status is not None:
                    span.set_attribute("http.response.status_code", result.status)
                try:
                    await self._settle(entry_id, fields, message, result)
                except REDIS_ERRORS as exc:  # stays pending: redelivered, answered 200, acked
                    self._queue_error(exc, f"entry {entry_id} not acknowledged (no CRM status written), "
                                      "stays pending")
            return result
        finally:
            self._in_flight.discard(entry_id)

    async def _call(self, message: CrmOrderMessage, request_id: str, started: float) -> DeliveryResult:
        result: DeliveryResult | None = None
        try:
            result = await self.delivery.deliver(message, request_id=request_id)
            return result
        finally:
            if result is None:  # cancelled (shutdown): no latency sample
                self.limiter.release(started, dropped=False, sample=False)
            else:
                self._m.duration.observe(max(0.0, self.limiter.now() - started))
                self.limiter.release(started, dropped=result.overload)
            self._m.in_flight.dec()
            self._m.limit.set(self.limiter.limit)

    async def _settle(self, entry_id: str, fields: Mapping[bytes, bytes], message: CrmOrderMessage,
                      result: DeliveryResult) -> None:
        """Acknowledge, dead-letter or leave pending; tell the pause gate; log."""
        self._m.delivered(result.outcome.value)
        common: dict[str, Any] = {"messaging__message__id": entry_id, "crm__order_id": message.crm_order_id,
                                  "http__response__status_code": result.status}
        if result.confirmed:
            if result.order_id is not None:
                order_id_var.set(str(result.order_id))
            self.gate.on_success()
            duplicate = result.status != 201
            self.stats.duplicates += duplicate
            self.stats.created += not duplicate
            _log(f"CRM order {message.crm_order_id} -> MES order {result.order_id}",
                 action="crm-relay-deliver", order__id=result.order_id, order__duplicate=duplicate, **common)
            await self._ack_delivered(entry_id, message, result)
            return
        if result.answered:  # a definitive 4xx: the MES works, this order never will
            self.gate.on_success()
            await self._dead_letter(entry_id, fields, result.detail, reason="rejected")
            return
        self.stats.failures += 1
        _log(f"CRM order {message.crm_order_id} not delivered, stays queued: {result.detail}",
             action="crm-relay-deliver", outcome="failure", level=logging.ERROR,
             error__type=result.outcome.value, error__message=result.detail, **common)
        if self.gate.on_failure(retry_after=result.retry_after):
            self._paused(result, message, probe=False)

    async def _ack_delivered(self, entry_id: str, message: CrmOrderMessage, result: DeliveryResult) -> None:
        """Acknowledge, recording ``DELIVERED`` + the MES order id for the CRM in the same transaction."""
        if result.order_id is None or not self.config.status_stream:
            self._m.status_written("skipped")
            if result.order_id is None:
                _log(f"CRM order {message.crm_order_id}: the MES answered {result.status} without an "
                     "order id; acknowledged, no status for the CRM", action="crm-status-write",
                     outcome="failure", level=logging.WARNING, crm__order_id=message.crm_order_id,
                     messaging__message__id=entry_id)
            await self.queue.ack(entry_id)
            return
        status = DeliveryStatus(crm_order_id=message.crm_order_id, mes_order_id=result.order_id,
                                delivered_at=utc_now_iso(),
                                delivered_by=f"{self.config.group}/{self.config.consumer}")
        try:
            await self.queue.ack_delivered(entry_id, status)
        except REDIS_ERRORS:
            self._m.status_written("failure")  # logged by the caller: the entry stays pending
            raise
        self._m.status_written("success")

    def _paused(self, result: DeliveryResult, message: CrmOrderMessage, *, probe: bool) -> None:
        self._m.paused.set(1)
        self._m.pauses.inc()
        why = "probe failed" if probe else f"{self.gate.failure_threshold} deliveries in a row failed"
        _log(f"relay paused for {self.gate.backoff:g} s: {why} ({result.detail})", action="crm-relay-pause",
             outcome="failure", level=logging.WARNING, crm__order_id=message.crm_order_id,
             error__type=result.outcome.value, error__message=result.detail,
             relay__backoff_seconds=self.gate.backoff)

    async def _dead_letter(self, entry_id: str, fields: Mapping[bytes, bytes], detail: str, *,
                           reason: str) -> None:
        await self.queue.dead_letter(entry_id, fields, detail)
        self.stats.dead_lettered += 1
        self._m.dead_lettered(reason)
        _log(f"entry {entry_id} dead-lettered ({reason}): {detail}", action="crm-relay-dead-letter",
             outcome="failure", level=logging.WARNING, messaging__message__id=entry_id,
             error__type=reason, error__message=detail)

    def _span(self, entry_id: str, fields: Mapping[bytes, bytes]) -> Any:
        attributes = {"messaging.system": "redis", "messaging.destination.name": self.config.stream,
                      "messaging.operation.type": "process", "messaging.message.id": entry_id,
                      "messaging.consumer.group.name": self.config.group}
        return consumer_span(f"{self.config.stream} process", fields, attributes=attributes,
                             tracer_provider=self._tracer_provider)

    # ------------------------------------------------------------ housekeeping

    def _queue_error(self, exc: BaseException, message: str) -> None:
        self._m.queue_errors.inc()
        _log(f"{message}: {exc}", action="db-error", outcome="failure", level=logging.ERROR,
             db__system="redis", error__type=type(exc).__name__, error__message=str(exc)[:500])

    async def _lag_loop(self) -> None:
        while not stop_requested():
            try:
                lag = await self.queue.lag()
            except REDIS_ERRORS as exc:
                if stop_requested():
                    raise asyncio.CancelledError from exc
                self._queue_error(exc, "CRM queue lag probe failed")
            else:
                self._m.length.set(lag.length)
                self._m.lag.set(lag.lag)
                self._m.pending.set(lag.pending)
                self._m.oldest_pending_age.set(lag.oldest_pending_age)
            await asyncio.sleep(self.config.lag_interval)

    async def _drain(self) -> None:
        """Let deliveries in flight finish for ``drain_timeout``, then cancel them (entries stay pending)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.drain_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
