"""The CRM → MES queue message: a small, versioned envelope on the ``crm:orders`` stream.

Stream entry fields (all strings; version ``v=1``)::

    v             "1"  — envelope version; consumers dead-letter versions they do not know
    crm_order_id  the CRM's order id, e.g. "CRM-00000042" (the MES's idempotency key)
    payload       JSON object: customer, material, quantity, model_name, [partner_id], [model_sha256]
    submitted_at  ISO 8601 UTC time the CRM accepted the order
    traceparent   optional W3C trace context of the CRM's PRODUCER span (the MES consumer's parent)
    tracestate    optional W3C tracestate, only together with traceparent

Unknown extra fields are ignored, so later versions can add fields compatibly.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.order_input import InvalidOrder, NewOrder, parse_new_order

STREAM = "crm:orders"
DEAD_LETTER_STREAM = "crm:orders:dead"
ENVELOPE_VERSION = "1"
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class PoisonMessage(ValueError):
    """A stream entry no consumer can ever process; it goes to the dead-letter stream."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CrmOrderMessage:
    """One order handed from the CRM to the MES."""

    crm_order_id: str
    order: NewOrder
    submitted_at: str
    traceparent: str | None = None
    tracestate: str | None = None

    def to_fields(self) -> dict[str, str]:
        """The stream entry fields (version 1)."""
        payload = {k: v for k, v in self.order.as_payload().items() if k != "external_ref"}
        fields = {"v": ENVELOPE_VERSION, "crm_order_id": self.crm_order_id,
                  "payload": json.dumps(payload, separators=(",", ":")),
                  "submitted_at": self.submitted_at}
        if self.traceparent:
            fields["traceparent"] = self.traceparent
            if self.tracestate:
                fields["tracestate"] = self.tracestate
        return fields


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _text_fields(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for key, value in fields.items():
            k = key.decode() if isinstance(key, bytes) else key
            out[k] = value.decode() if isinstance(value, bytes) else value
    except UnicodeDecodeError as exc:
        raise PoisonMessage(f"field is not UTF-8: {exc}") from None
    return out


def parse_message(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> CrmOrderMessage:
    """Validate a stream entry into a :class:`CrmOrderMessage`; raises :class:`PoisonMessage`."""
    text = _text_fields(fields)
    version = text.get("v")
    if version != ENVELOPE_VERSION:
        raise PoisonMessage(f"unsupported envelope version {version!r} (expected {ENVELOPE_VERSION!r})")
    crm_order_id = text.get("crm_order_id", "").strip()
    if not crm_order_id or len(crm_order_id) > 100:
        raise PoisonMessage("crm_order_id missing or longer than 100 characters")
    try:
        payload = json.loads(text.get("payload", ""))
    except json.JSONDecodeError as exc:
        raise PoisonMessage(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PoisonMessage("payload is not a JSON object")
    try:
        order = parse_new_order(payload, allow_external_ref=False)
    except InvalidOrder as exc:
        raise PoisonMessage(f"invalid payload: {exc}") from None
    traceparent = text.get("traceparent")
    if traceparent is not None and not TRACEPARENT.match(traceparent):
        traceparent = None  # a bad trace context must not cost an order
    return CrmOrderMessage(crm_order_id=crm_order_id,
                           order=dataclasses.replace(order, external_ref=crm_order_id),
                           submitted_at=text.get("submitted_at", ""), traceparent=traceparent,
                           tracestate=text.get("tracestate") if traceparent else None)
