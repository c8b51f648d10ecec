"""Order-change events seen in proxied MES traffic (the answers of successful writes).

``POST /orders/{id}/status`` 2xx and ``POST /orders/{id}/price`` 2xx change a status;
``POST /orders`` 201 creates an order (200 is the idempotent replay of an existing one:
no event). The answer is the order as the MES returns it (``id``, ``status``,
``status_changed_at``), so nothing has to be read back from the database.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from contracts.lifecycle import STATUS_NAMES as STATUSES
from contracts.lifecycle import predecessor
from contracts.order_events import CREATED, STATUS_CHANGED, OrderEvent

#: Route templates whose successful POST answers may carry a status change.
EVENT_ROUTES = frozenset({"/orders", "/orders/{id}/status", "/orders/{id}/price"})
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def wants_body(kind: str, method: str, route: str, status: int) -> bool:
    """True when this answer must be read to publish an event."""
    if kind != "mes" or method != "POST" or route not in EVENT_ROUTES:
        return False
    return status == 201 if route == "/orders" else 200 <= status < 300


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a well-formed W3C traceparent, else None (never forward garbage)."""
    return value if value is not None and _TRACEPARENT.match(value) else None


def _parse_order(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def event_from_answer(route: str, body: bytes, *, instance: str,
                      traceparent: str | None = None) -> OrderEvent | None:
    """The event a successful answer of ``route`` reports, or None if the body is not an order."""
    order = _parse_order(body)
    if order is None:
        return None
    order_id, status = order.get("id"), order.get("status")
    if not isinstance(order_id, int) or isinstance(order_id, bool) or status not in STATUSES:
        return None
    occurred_at = order.get("status_changed_at")
    if not isinstance(occurred_at, str):
        occurred_at = datetime.now(UTC).isoformat()
    created = route == "/orders"
    return OrderEvent(type=CREATED if created else STATUS_CHANGED, order_id=order_id,
                      old_status=None if created else predecessor(status), new_status=status,
                      occurred_at=occurred_at, source="proxy", instance=instance,
                      traceparent=valid_traceparent(traceparent))
