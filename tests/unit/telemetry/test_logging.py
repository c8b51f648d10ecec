"""EcsJsonFormatter: the ECS fields every log line carries, including the current trace."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace

from telemetry import order_id_var, request_id_var, setup_logging


def test_every_line_has_the_base_ecs_fields(log_lines):
    logger, read = log_lines
    logger.warning("disk almost full")
    line = read()[0]
    assert line["message"] == "disk almost full"
    assert line["log.level"] == "warning"
    assert line["service.name"] == "test-service"
    assert line["@timestamp"].endswith(("Z", "+00:00"))
    assert line["log.logger"] == "tests.telemetry"
    assert "trace.id" not in line
    assert "span.id" not in line


def test_request_and_order_ids_come_from_context_vars(log_lines):
    logger, read = log_lines
    request_token = request_id_var.set("req-42")
    order_token = order_id_var.set("O-7")
    try:
        logger.info("priced")
    finally:
        order_id_var.reset(order_token)
        request_id_var.reset(request_token)
    logger.info("outside the request")
    inside, outside = read()
    assert inside["http.request.id"] == "req-42"
    assert inside["order.id"] == "O-7"
    assert "http.request.id" not in outside
    assert "order.id" not in outside


def test_event_duration_passes_through_as_integer_nanoseconds(log_lines):
    logger, read = log_lines
    logger.info("priced", extra={"event.duration": 2_345_678_901, "event.action": "price"})
    line = read()[0]
    assert line["event.duration"] == 2_345_678_901
    assert isinstance(line["event.duration"], int)


def test_lines_inside_a_span_carry_its_trace_and_span_ids(log_lines, spans):
    logger, read = log_lines
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.info("inside")
    logger.info("after")
    inside, after = read()
    span_context = span.get_span_context()
    assert inside["trace.id"] == f"{span_context.trace_id:032x}"
    assert inside["span.id"] == f"{span_context.span_id:016x}"
    assert len(inside["trace.id"]) == 32
    assert len(inside["span.id"]) == 16
    assert "trace.id" not in after


def test_lines_in_an_unsampled_trace_still_carry_its_ids(log_lines):
    logger, read = log_lines
    unsampled = trace.NonRecordingSpan(trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=True))
    with trace.use_span(unsampled):
        logger.info("inside")
    assert read()[0]["trace.id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_setup_logging_writes_redacted_json_to_the_given_stream():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging("sidecar", level="debug", stream=stream)
        logging.getLogger("sidecar.relay").debug("relay to %s", "postgresql://mes:pw@db/mes")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["service.name"] == "sidecar"
    assert line["message"] == "relay to postgresql://mes:[REDACTED]@db/mes"
