"""MES → CRM delivery status: a small, versioned message on the ``crm:orders:status`` stream.

The CRM's inbound counterpart of ``crm:orders`` (see :mod:`contracts.crm_envelope`): whoever
has the MES's confirmation that it created a CRM order (the sidecar's relay, after the MES
answered 201/200) appends one entry; the CRM applies it to its order record. Stream entry fields
(all strings; version ``v=1``)::

    v             "1"  — message version; readers skip versions they do not know
    crm_order_id  the CRM's order id, e.g. "CRM-00000042"
    status        "DELIVERED" — the MES has the order (the only status of version 1)
    mes_order_id  the MES's order id (decimal)
    delivered_at  ISO 8601 UTC time the MES's confirmation was recorded
    delivered_by  who recorded it, e.g. "mes-relay/mes-1" (consumer group / consumer)

Entries for the same order may repeat (a redelivery after a lost acknowledgement): the MES's
creation is idempotent, so every repeat names the same MES order; applying one twice is harmless.
Unknown extra fields are ignored, so later versions can add fields compatibly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

STATUS_STREAM = "crm:orders:status"
STATUS_VERSION = "1"
DELIVERED = "DELIVERED"
#: Writers trim the stream to about this many entries (``XADD MAXLEN ~``): the CRM reads it within
#: seconds, so this only bounds Redis memory when no CRM reads it at all.
STATUS_STREAM_MAXLEN = 100_000


class InvalidStatus(ValueError):
    """A status entry the CRM cannot apply (skipped and counted, never retried)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryStatus:
    """The MES has created the CRM order ``crm_order_id`` as ``mes_order_id``."""

    crm_order_id: str
    mes_order_id: int
    delivered_at: str
    delivered_by: str = ""

    def to_fields(self) -> dict[str, str]:
        """The stream entry fields (version 1)."""
        return {"v": STATUS_VERSION, "crm_order_id": self.crm_order_id, "status": DELIVERED,
                "mes_order_id": str(self.mes_order_id), "delivered_at": self.delivered_at,
                "delivered_by": self.delivered_by}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_status(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> DeliveryStatus:
    """Validate a stream entry into a :class:`DeliveryStatus`; raises :class:`InvalidStatus`."""
    text = {_text(k): _text(v) for k, v in fields.items()}
    if text.get("v") != STATUS_VERSION or text.get("status") != DELIVERED:
        raise InvalidStatus(f"unsupported version {text.get('v')!r} or status {text.get('status')!r}")
    crm_order_id = text.get("crm_order_id", "").strip()
    if not crm_order_id or len(crm_order_id) > 100:
        raise InvalidStatus("crm_order_id missing or longer than 100 characters")
    mes_order_id = text.get("mes_order_id", "")
    if not mes_order_id.isdecimal() or len(mes_order_id) > 19:
        raise InvalidStatus("mes_order_id is not a decimal order id")
    return DeliveryStatus(crm_order_id=crm_order_id, mes_order_id=int(mes_order_id),
                          delivered_at=text.get("delivered_at", "")[:40],
                          delivered_by=text.get("delivered_by", "")[:100])
