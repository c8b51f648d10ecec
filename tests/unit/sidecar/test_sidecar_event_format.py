"""Event format v1: the same event as JSON (pub/sub) and as flat stream fields."""

from __future__ import annotations

import json

import pytest

from sidecar.event_format import InvalidEvent, OrderEvent, parse_event
from sidecar.proxy_events import event_from_answer, wants_body

EVENT = OrderEvent(type="order.status_changed", order_id=42, old_status="SUBMITTED",
                   new_status="PRICE_CALCULATED", occurred_at="2026-01-02T03:04:05.123456+00:00",
                   source="db", instance="mes-1", history_id=7)


def test_json_and_stream_fields_round_trip() -> None:
    assert parse_event(EVENT.to_json()) == EVENT
    assert parse_event(EVENT.to_stream_fields()) == EVENT
    fields_as_bytes = {k.encode(): v.encode() for k, v in EVENT.to_stream_fields().items()}
    assert parse_event(fields_as_bytes) == EVENT


def test_v1_json_shape_is_the_documented_one() -> None:
    assert json.loads(EVENT.to_json()) == {
        "v": 1, "type": "order.status_changed", "order_id": 42, "old_status": "SUBMITTED",
        "new_status": "PRICE_CALCULATED", "occurred_at": "2026-01-02T03:04:05.123456+00:00",
        "source": "db", "instance": "mes-1", "history_id": 7}
    created = OrderEvent(type="order.created", order_id=1, old_status=None, new_status="SUBMITTED",
                         occurred_at="t", source="proxy", instance="mes-1")
    assert "old_status" not in created.to_stream_fields()  # stream fields are strings: None is omitted
    assert json.loads(created.to_json())["old_status"] is None


@pytest.mark.parametrize("message", [
    "not json", "[]", json.dumps({**EVENT.to_dict(), "v": 2}),
    json.dumps({"v": 1, "type": "order.created"}),
    json.dumps({**EVENT.to_dict(), "type": "order.deleted"}),
    json.dumps({**EVENT.to_dict(), "order_id": "x"}),
])
def test_invalid_messages_are_rejected(message: str) -> None:
    with pytest.raises(InvalidEvent):
        parse_event(message)


def test_answers_of_successful_writes_become_events() -> None:
    order = {"id": 5, "status": "MANUFACTURING_STARTED", "status_changed_at": "2026-01-01T00:00:00+00:00"}
    event = event_from_answer("/orders/{id}/status", json.dumps(order).encode(), instance="mes-1",
                              traceparent="garbage")
    assert event is not None
    assert (event.type, event.order_id, event.old_status, event.new_status) == (
        "order.status_changed", 5, "MANUFACTURING_APPROVED", "MANUFACTURING_STARTED")
    assert event.occurred_at == order["status_changed_at"]
    assert event.traceparent is None  # a malformed traceparent is never forwarded
    cancelled = event_from_answer("/orders/{id}/status", b'{"id": 5, "status": "CANCELLED"}', instance="m")
    assert cancelled is not None
    assert cancelled.old_status is None
    created = event_from_answer("/orders", b'{"id": 9, "status": "SUBMITTED"}', instance="m")
    assert created is not None
    assert created.type == "order.created"
    for body in (b"", b"[1]", b'{"id": "9", "status": "SUBMITTED"}', b'{"id": 9, "status": "NOPE"}'):
        assert event_from_answer("/orders", body, instance="m") is None


def test_only_successful_mes_writes_are_read_for_events() -> None:
    assert wants_body("mes", "POST", "/orders", 201)
    assert not wants_body("mes", "POST", "/orders", 200)  # idempotent replay of an existing order
    assert wants_body("mes", "POST", "/orders/{id}/status", 200)
    assert not wants_body("mes", "POST", "/orders/{id}/status", 409)
    assert not wants_body("mes", "GET", "/orders/{id}", 200)
    assert not wants_body("crm", "POST", "/orders", 201)
