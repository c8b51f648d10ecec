"""CRM → MES relay with backpressure (runs inside a MES sidecar with ``--relay-redis-url``).

Reads the CRM's ``crm:orders`` stream as consumer group ``mes-relay`` and creates each order on
the sidecar's MES with ``POST /orders`` (idempotent by CRM order id), at most as many at once as
an adaptive limit following the MES's latency allows; pauses while the MES fails. See
``docs/sidecar.md`` ("Relay").
"""

from sidecar.relay.config import RelayConfig
from sidecar.relay.relay import CrmRelay

__all__ = ["CrmRelay", "RelayConfig"]
