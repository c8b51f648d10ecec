"""Per-request context that every log line carries (request id, order id)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
order_id_var: ContextVar[str | None] = ContextVar("order_id", default=None)
