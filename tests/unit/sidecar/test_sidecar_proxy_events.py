"""The proxy's order-change events: which MES answers become events, and which event.

The event format itself (writer and parser) is tested in ``tests/unit/contracts/test_order_events.py``.
"""

from __future__ import annotations

import json

from sidecar.proxy_events import event_from_answer, wants_body


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
