"""Order-change event, format version 1 (documented in ``docs/sidecar.md``).

One event per status change of one order. The same object travels two ways:

* pub/sub channel ``orders:events``: the compact JSON object (``"v": 1`` a number);
* stream ``orders:events``: a flat ``str → str`` entry, one field per key, all values
  strings (``"v": "1"``), absent keys omitted — ``traceparent`` is then a top-level
  field, as the telemetry message contract requires.

Compatible additions keep ``v = 1`` (consumers ignore unknown keys); anything
incompatible becomes ``v = 2``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = 1
CREATED = "order.created"
STATUS_CHANGED = "order.status_changed"
TYPES = (CREATED, STATUS_CHANGED)
SOURCES = ("proxy", "db")


class InvalidEvent(ValueError):
    """A message that is not a valid v1 order event."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderEvent:
    """One order-change event; ``old_status`` is None for a creation or when the proxy cannot know it."""

    type: str
    order_id: int
    old_status: str | None
    new_status: str
    occurred_at: str  # ISO 8601 with offset
    source: str
    instance: str
    history_id: int | None = None
    traceparent: str | None = None

    @property
    def dedupe_key(self) -> str:
        """An order never enters the same status twice, so (order, new status) names one change."""
        return f"{self.order_id}:{self.new_status}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, optional keys left out when absent."""
        body: dict[str, Any] = {"v": VERSION, "type": self.type, "order_id": self.order_id,
                                "old_status": self.old_status, "new_status": self.new_status,
                                "occurred_at": self.occurred_at, "source": self.source,
                                "instance": self.instance}
        if self.history_id is not None:
            body["history_id"] = self.history_id
        if self.traceparent:
            body["traceparent"] = self.traceparent
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_stream_fields(self) -> dict[str, str]:
        """Flat string fields for XADD; ``None`` values (e.g. ``old_status``) are omitted."""
        return {key: str(value) for key, value in self.to_dict().items() if value is not None}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def parse_event(message: str | bytes | dict[Any, Any]) -> OrderEvent:
    """Parse a pub/sub JSON message or a stream entry (str or bytes keys) into an event."""
    try:
        if isinstance(message, dict):
            data = {_text(k): _text(v) for k, v in message.items()}
        else:
            data = json.loads(message)
        if not isinstance(data, dict):
            raise InvalidEvent("an event is a JSON object")
        if str(data.get("v")) != str(VERSION):
            raise InvalidEvent(f"unsupported event version {data.get('v')!r}")
        history_id = data.get("history_id")
        event = OrderEvent(type=data["type"], order_id=int(data["order_id"]),
                           old_status=data.get("old_status"), new_status=data["new_status"],
                           occurred_at=data["occurred_at"], source=data["source"],
                           instance=data["instance"],
                           history_id=int(history_id) if history_id is not None else None,
                           traceparent=data.get("traceparent"))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, InvalidEvent):
            raise
        raise InvalidEvent(f"not an order event: {exc}") from exc
    if event.type not in TYPES or event.source not in SOURCES:
        raise InvalidEvent(f"unknown type/source {event.type!r}/{event.source!r}")
    return event
