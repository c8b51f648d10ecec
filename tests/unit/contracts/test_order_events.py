"""Order-change events: the one parser reads what the one writer writes; versions are checked."""

from __future__ import annotations

import json

import pytest

from contracts.order_events import REJECT_REASONS, InvalidEvent, OrderEvent, parse_event

CHANGED = OrderEvent(type="order.status_changed", order_id=42, old_status="SUBMITTED",
                     new_status="PRICE_CALCULATED", occurred_at="2026-01-02T03:04:05.123456+00:00",
                     source="db", instance="mes-1", history_id=7,
                     traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
CREATED = OrderEvent(type="order.created", order_id=1, old_status=None, new_status="SUBMITTED",
                     occurred_at="2026-01-02T03:04:05+00:00", source="proxy", instance="mes-2")


@pytest.mark.parametrize("event", [CHANGED, CREATED], ids=["status_changed", "created"])
def test_the_parser_reads_every_form_the_writer_writes(event: OrderEvent) -> None:
    assert parse_event(event.to_json()) == event
    assert parse_event(event.to_json().encode()) == event  # pub/sub data arrives as bytes
    assert parse_event(event.to_stream_fields()) == event
    assert parse_event({k.encode(): v.encode() for k, v in event.to_stream_fields().items()}) == event


def test_v1_json_shape_is_the_documented_one() -> None:
    assert json.loads(CHANGED.to_json()) == {
        "v": 1, "type": "order.status_changed", "order_id": 42, "old_status": "SUBMITTED",
        "new_status": "PRICE_CALCULATED", "occurred_at": "2026-01-02T03:04:05.123456+00:00",
        "source": "db", "instance": "mes-1", "history_id": 7,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert json.loads(CREATED.to_json())["old_status"] is None
    assert "old_status" not in CREATED.to_stream_fields()  # stream fields are strings: None is omitted
    assert CREATED.to_stream_fields()["v"] == "1"


def test_unknown_keys_of_version_1_are_ignored() -> None:
    """Compatible additions keep v = 1: a v1 reader takes what it knows."""
    assert parse_event(json.dumps({**CHANGED.to_dict(), "tenant": "acme"})) == CHANGED
    assert parse_event({**CHANGED.to_stream_fields(), "tenant": "acme"}) == CHANGED


@pytest.mark.parametrize("message", [
    json.dumps({k: v for k, v in CHANGED.to_dict().items() if k != "v"}),
    {k: v for k, v in CHANGED.to_stream_fields().items() if k != "v"},
    json.dumps({**CHANGED.to_dict(), "v": None}),
], ids=["json", "stream", "null"])
def test_an_event_without_a_version_is_rejected_as_missing_version(message: str | dict[str, str]) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(message)
    assert raised.value.reason == "missing_version"


@pytest.mark.parametrize("version", [2, "2", 0, "1.0", "v1"])
def test_an_event_of_another_version_is_rejected_as_unknown_version(version: object) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(json.dumps({**CHANGED.to_dict(), "v": version}))
    assert raised.value.reason == "unknown_version"
    assert repr(version) in str(raised.value)


@pytest.mark.parametrize("message", [
    "not json", b"\xff\xfe", "[]", "1",
    json.dumps({"v": 1, "type": "order.created"}),
    json.dumps({**CHANGED.to_dict(), "type": "order.deleted"}),
    json.dumps({**CHANGED.to_dict(), "source": "crm"}),
    json.dumps({**CHANGED.to_dict(), "order_id": "x"}),
    json.dumps({**CHANGED.to_dict(), "history_id": [1]}),
    {b"v": b"1", b"type": b"\xff"},
])
def test_a_malformed_version_1_message_is_rejected_as_malformed(message: str | bytes | dict[bytes, bytes],
                                                                ) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(message)
    assert raised.value.reason == "malformed"


def test_reject_reasons_are_a_small_fixed_set() -> None:
    assert REJECT_REASONS == ("missing_version", "unknown_version", "malformed")
