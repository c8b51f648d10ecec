"""W3C trace context through flat str→str carriers (HTTP headers, Redis stream entries)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from telemetry.propagation import TRACEPARENT, consumer_span, extract, inject, producer_span

TRACEPARENT_SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_producer_to_consumer_round_trip_makes_the_consumer_a_child(spans):
    message = {"quote_id": "Q-1", "model_sha256": "ab12"}
    with producer_span("send pricing.jobs", message, {"messaging.system": "redis"},
                       tracer_provider=spans.provider) as produced:
        pass
    assert set(message) == {"quote_id", "model_sha256", TRACEPARENT}  # flat str→str fields only
    assert all(isinstance(v, str) for v in message.values())

    with consumer_span("process pricing.jobs", message, attributes={"messaging.system": "redis"},
                       tracer_provider=spans.provider) as consumed:
        assert trace.get_current_span() is consumed

    producer, consumer = spans.finished()
    assert producer.kind is SpanKind.PRODUCER
    assert consumer.kind is SpanKind.CONSUMER
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.parent.is_remote
    version, trace_id, parent_id, flags = message[TRACEPARENT].split("-")
    assert (version, trace_id, parent_id) == (
        "00", f"{produced.get_span_context().trace_id:032x}", f"{produced.get_span_context().span_id:016x}")
    assert int(flags, 16) & 0x01  # sampled
    assert consumed.get_span_context().trace_id == produced.get_span_context().trace_id


def test_inject_extract_round_trip_keeps_ids_and_tracestate():
    carrier = {TRACEPARENT: TRACEPARENT_SAMPLED, "tracestate": "mes=1,crm=2"}
    context = extract(carrier)
    out: dict[str, str] = {}
    inject(out, context)
    assert out == carrier


def test_extract_reads_bytes_entries_from_redis_without_decode_responses():
    entry = {b"order_id": b"O-1", b"traceparent": TRACEPARENT_SAMPLED.encode()}
    span_context = trace.get_current_span(extract(entry)).get_span_context()
    assert span_context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert span_context.span_id == 0x00F067AA0BA902B7


ALL_ZERO_IDS = "00-" + "0" * 32 + "-" + "0" * 16 + "-01"


@pytest.mark.parametrize("carrier", [{}, {TRACEPARENT: "garbage"}, {TRACEPARENT: ALL_ZERO_IDS}])
def test_consumer_of_a_message_without_valid_context_starts_a_new_trace(spans, carrier):
    with consumer_span("process crm.orders", carrier, tracer_provider=spans.provider):
        pass
    (consumer,) = spans.finished()
    assert consumer.parent is None


def test_link_only_consumer_starts_a_root_linked_to_the_producer(spans):
    with consumer_span("process crm.orders", {TRACEPARENT: TRACEPARENT_SAMPLED}, link_only=True,
                       tracer_provider=spans.provider):
        pass
    (consumer,) = spans.finished()
    assert consumer.parent is None
    assert consumer.context.trace_id != 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert [link.context.span_id for link in consumer.links] == [0x00F067AA0BA902B7]


def test_exception_while_consuming_is_recorded_and_reraised(spans):
    with pytest.raises(ValueError, match="bad model"), \
            consumer_span("process pricing.jobs", {TRACEPARENT: TRACEPARENT_SAMPLED},
                          tracer_provider=spans.provider):
        raise ValueError("bad model")
    (consumer,) = spans.finished()
    assert consumer.status.status_code is StatusCode.ERROR
    assert consumer.events[0].name == "exception"


def test_with_tracing_off_helpers_do_nothing_and_leave_the_carrier_alone():
    message = {"order_id": "O-1"}
    with producer_span("send", message) as produced:
        assert not produced.is_recording()
    with consumer_span("process", {TRACEPARENT: TRACEPARENT_SAMPLED}) as consumed:
        assert not consumed.is_recording()
    inject(message)
    assert message == {"order_id": "O-1"}
