"""W3C trace context (``traceparent``/``tracestate``) in and out of any str→str carrier.

The same functions serve HTTP headers and queue messages: a Redis stream entry is
a flat ``field → value`` map, so the two W3C fields ride as two ordinary message
fields next to the payload (see docs/telemetry.md, "Propagation contract").
Baggage is deliberately not propagated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from telemetry.tracing import active_tracer

__all__ = ["TRACEPARENT", "TRACESTATE", "consumer_span", "extract", "inject", "producer_span"]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_PROPAGATOR = TraceContextTextMapPropagator()


class _CarrierGetter(Getter[Mapping[Any, Any]]):
    """Reads str keys, and falls back to bytes keys/values (redis-py without ``decode_responses``)."""

    def get(self, carrier: Mapping[Any, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            try:
                value = carrier.get(key.encode())
            except TypeError:  # multidict-style carriers reject bytes keys
                return None
            if value is None:
                return None
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return [str(value)]

    def keys(self, carrier: Mapping[Any, Any]) -> list[str]:
        return [k.decode("ascii", "replace") if isinstance(k, bytes) else str(k) for k in carrier]


_GETTER = _CarrierGetter()


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write ``traceparent`` (and ``tracestate`` if any) of the current span into ``carrier``.

    Writes nothing when there is no valid span (tracing off), so it is safe to call always.
    """
    _PROPAGATOR.inject(carrier, context=context)


def extract(carrier: Mapping[str, str] | Mapping[bytes, bytes], context: Context | None = None) -> Context:
    """A context whose current span is the remote parent named by ``carrier``'s ``traceparent``.

    A missing or malformed ``traceparent`` yields ``context`` (default: the current one) unchanged.
    """
    return _PROPAGATOR.extract(carrier, context=context, getter=_GETTER)


@contextmanager
def producer_span(name: str, carrier: MutableMapping[str, str], attributes: Attributes = None, *,
                  tracer_provider: trace.TracerProvider | None = None) -> Iterator[trace.Span]:
    """Start a current PRODUCER span and inject its context into ``carrier`` (the message fields).

    Publish the message inside the ``with`` block so the span covers the send. With tracing off
    it yields a non-recording span and leaves ``carrier`` untouched.
    """
    tracer = active_tracer(tracer_provider)
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    with tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER, attributes=attributes) as span:
        inject(carrier)
        yield span


@contextmanager
def consumer_span(name: str, carrier: Mapping[str, str] | Mapping[bytes, bytes], *,
                  attributes: Attributes = None, link_only: bool = False,
                  tracer_provider: trace.TracerProvider | None = None) -> Iterator[trace.Span]:
    """Start a current CONSUMER span for processing one message whose fields are ``carrier``.

    By default the producer's span is the parent, so the whole order/quote flow is one trace.
    ``link_only=True`` starts a new trace that *links* to the producer instead (batches, or
    messages from a source we do not trust to set our sampling decision). An exception raised in
    the block is recorded on the span, which is marked as an error, and re-raised.
    """
    tracer = active_tracer(tracer_provider)
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    remote = extract(carrier)
    links: list[trace.Link] | None = None
    if link_only:
        remote_span_context = trace.get_current_span(remote).get_span_context()
        links = [trace.Link(remote_span_context)] if remote_span_context.is_valid else None
        remote = Context()  # empty context: the consumer span is a root
    with tracer.start_as_current_span(name, context=remote, kind=trace.SpanKind.CONSUMER,
                                      attributes=attributes, links=links) as span:
        yield span
