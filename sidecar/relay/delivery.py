"""One CRM order → one ``POST /orders`` on the MES, and what its answer means for the relay.

The body is the order as the CRM accepted it plus ``source: "crm"`` and ``external_ref`` = the
CRM order id, so the MES creates it idempotently: ``201`` the first time, ``200`` with the same
order for every repeat. The call runs in a CLIENT span that injects ``traceparent``; with tracing
off the envelope's own ``traceparent`` is passed through unchanged.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from opentelemetry import trace

from contracts.crm_envelope import CrmOrderMessage
from telemetry import client_span, set_response_status

#: Answers that say "this order can never be created": dead-letter it instead of retrying forever.
REJECTED_STATUSES = frozenset({400, 413, 415, 422})
#: Answers (besides timeouts and refused connections) that mean "too much load": the limit shrinks.
OVERLOAD_STATUSES = frozenset({429, 503})


class Outcome(enum.Enum):
    """The ``outcome`` label of ``sidecar_relay_deliveries_total``."""

    CREATED = "created"  # 201: new order
    DUPLICATE = "duplicate"  # 200: the MES already had it (a redelivery)
    REJECTED = "rejected"  # 400/413/415/422: dead-lettered
    ERROR = "error"  # any other answer (5xx, 429, 404 …): stays pending, retried
    TIMEOUT = "timeout"  # no answer within the delivery timeout: stays pending
    CONNECT_ERROR = "connect_error"  # refused, reset, unreachable: stays pending


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryResult:
    """What happened to one delivery."""

    outcome: Outcome
    status: int | None = None
    order_id: int | None = None
    detail: str = ""
    retry_after: float | None = None

    @property
    def confirmed(self) -> bool:
        """The MES has the order (2xx): the entry may be acknowledged."""
        return self.outcome in (Outcome.CREATED, Outcome.DUPLICATE)

    @property
    def answered(self) -> bool:
        """The MES worked normally (confirmed or a definitive rejection): good for the pause gate."""
        return self.confirmed or self.outcome is Outcome.REJECTED

    @property
    def overload(self) -> bool:
        """A load signal for the adaptive limit (counted as a drop, not as a latency sample)."""
        return self.outcome in (Outcome.TIMEOUT, Outcome.CONNECT_ERROR) or self.status in OVERLOAD_STATUSES


def order_body(message: CrmOrderMessage) -> dict[str, Any]:
    """The ``POST /orders`` body: the CRM payload, ``external_ref`` = CRM order id, ``source`` crm."""
    return {**message.order.as_payload(), "external_ref": message.crm_order_id, "source": "crm"}


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: ignore, our own backoff applies


def _problem_detail(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("detail") or body.get("title") or "")]
    params = body.get("invalid_params")
    if isinstance(params, list):
        parts += [f"{p.get('name')}: {p.get('reason')}" for p in params if isinstance(p, dict)]
    return "; ".join(p for p in parts if p)[:500]


def _mark_failed(span: trace.Span, exc: BaseException) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))


class MesDelivery:
    """Sends orders to one MES base URL over a shared session (the caller bounds concurrency)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, path: str = "/orders",
                 timeout: float = 10.0, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._session = session
        self.url = base_url.rstrip("/") + path
        self._path = path
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._tracer_provider = tracer_provider

    async def deliver(self, message: CrmOrderMessage, *, request_id: str | None = None) -> DeliveryResult:
        """POST the order; never raises for MES or network failures (they are outcomes)."""
        headers: CIMultiDict[str] = CIMultiDict({"X-Request-ID": request_id or f"relay-{uuid.uuid4().hex}"})
        async with client_span("POST", self.url, headers, peer_service="mes", url_template=self._path,
                               tracer_provider=self._tracer_provider) as span:
            if not span.get_span_context().is_valid and message.traceparent:
                headers["traceparent"] = message.traceparent  # tracing off: pass the CRM's through
                if message.tracestate:
                    headers["tracestate"] = message.tracestate
            try:
                async with self._session.post(self.url, json=order_body(message), headers=headers,
                                              timeout=self._timeout) as resp:
                    set_response_status(span, resp.status, error_from=500)
                    return await self._result(resp)
            except TimeoutError as exc:
                _mark_failed(span, exc)
                return DeliveryResult(outcome=Outcome.TIMEOUT,
                                      detail=f"no answer within {self._timeout.total} s")
            except (aiohttp.ClientError, OSError) as exc:
                _mark_failed(span, exc)
                return DeliveryResult(outcome=Outcome.CONNECT_ERROR,
                                      detail=f"{type(exc).__name__}: {exc}"[:500])

    @staticmethod
    async def _result(resp: aiohttp.ClientResponse) -> DeliveryResult:
        try:
            body: Any = await resp.json(content_type=None)
        except (ValueError, aiohttp.ClientPayloadError, asyncio.IncompleteReadError):
            body = None
        status = resp.status
        if 200 <= status < 300:
            order_id = body.get("id") if isinstance(body, dict) else None
            return DeliveryResult(outcome=Outcome.CREATED if status == 201 else Outcome.DUPLICATE,
                                  status=status, order_id=order_id if isinstance(order_id, int) else None)
        outcome = Outcome.REJECTED if status in REJECTED_STATUSES else Outcome.ERROR
        return DeliveryResult(outcome=outcome, status=status,
                              detail=f"MES answered {status}: {_problem_detail(body)}".rstrip(": "),
                              retry_after=_retry_after(resp.headers.get("Retry-After")))
