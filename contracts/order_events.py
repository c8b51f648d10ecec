"""Order-change events: one status change of one MES order, versioned (``v = 1``).

The one writer is :class:`OrderEvent` (the MES sidecar builds one per change it sees, from its
proxy and from its database poller); the one parser is :func:`parse_event` (the gateway's cache
reads the pub/sub feed with it). The same event travels two ways (``docs/sidecar.md``):

* pub/sub channel :data:`CHANNEL`: the compact JSON object (``"v": 1`` a number);
* stream :data:`STREAM`: a flat ``str → str`` entry, one field per key, all values strings
  (``"v": "1"``), absent keys omitted — ``traceparent`` is then a top-level field, as the
  telemetry message contract requires.

Versioning: compatible additions keep ``v = 1`` (readers ignore unknown keys); anything
incompatible becomes ``v = 2``. :func:`parse_event` accepts version 1 only; a message without
``v``, with another ``v`` or otherwise unreadable raises :class:`InvalidEvent` whose ``reason``
(one of :data:`REJECT_REASONS`) a reader counts and logs — it never crashes on one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

VERSION = 1
#: Pub/sub channel and stream of the events (same name, two Redis types).
CHANNEL = "orders:events"
STREAM = "orders:events"
CREATED = "order.created"
STATUS_CHANGED = "order.status_changed"
TYPES = (CREATED, STATUS_CHANGED)
SOURCES = ("proxy", "db")

RejectReason = Literal["missing_version", "unknown_version", "malformed"]
#: Why :func:`parse_event` refused a message (a bounded metric label set).
REJECT_REASONS: tuple[RejectReason, ...] = ("missing_version", "unknown_version", "malformed")


class InvalidEvent(ValueError):
    """A message that is not a valid version-1 order event; ``reason`` says which way."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: RejectReason = reason


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
        """The pub/sub message."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_stream_fields(self) -> dict[str, str]:
        """Flat string fields for XADD; ``None`` values (e.g. ``old_status``) are omitted."""
        return {key: str(value) for key, value in self.to_dict().items() if value is not None}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _object(message: str | bytes | dict[Any, Any]) -> dict[str, Any]:
    try:
        data = ({_text(k): _text(v) for k, v in message.items()} if isinstance(message, dict)
                else json.loads(message))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidEvent("malformed", f"not an order event: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("malformed", "an event is a JSON object")
    return data


def parse_event(message: str | bytes | dict[Any, Any]) -> OrderEvent:
    """Parse a pub/sub JSON message or a stream entry (str or bytes keys) into an event.

    Raises :class:`InvalidEvent` (``reason`` ``missing_version``, ``unknown_version`` or
    ``malformed``) for anything but a complete version-1 event.
    """
    data = _object(message)
    version = data.get("v")
    if version is None:
        raise InvalidEvent("missing_version", "an order event without a version ('v')")
    if str(version) != str(VERSION):
        raise InvalidEvent("unknown_version", f"unsupported event version {version!r} (reads {VERSION})")
    try:
        history_id = data.get("history_id")
        event = OrderEvent(type=data["type"], order_id=int(data["order_id"]),
                           old_status=data.get("old_status"), new_status=data["new_status"],
                           occurred_at=data["occurred_at"], source=data["source"],
                           instance=data["instance"],
                           history_id=int(history_id) if history_id is not None else None,
                           traceparent=data.get("traceparent"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEvent("malformed", f"not an order event: {exc!r}") from exc
    if event.type not in TYPES or event.source not in SOURCES:
        raise InvalidEvent("malformed", f"unknown type/source {event.type!r}/{event.source!r}")
    return event
