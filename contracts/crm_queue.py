"""What every consumer of the CRM queue shares beyond the envelope: dead letters and outcomes.

Two consumers read ``crm:orders`` (:mod:`contracts.crm_envelope`), each as its own consumer
group: the legacy MES's own (``legacy_sim.mes.crm_consumer``) and the sidecar's relay
(``sidecar.relay``). Both

* copy an entry they can never deliver to ``crm:orders:dead`` in the same format —
  :func:`dead_letter_fields`: the original fields plus ``dl_reason``, ``dl_original_id``,
  ``dl_failed_at`` (ISO 8601 UTC) and ``dl_consumer`` (who gave up on it), which operators read
  (``docs/runbooks/CrmQueueDeadLetters.md``);
* count what became of the entries they read with :class:`ConsumerStats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contracts.crm_envelope import utc_now_iso


def dead_letter_fields(fields: Mapping[Any, Any], *, reason: str, entry_id: str | bytes,
                       consumer: str) -> dict[Any, Any]:
    """The dead-letter entry of the CRM queue entry ``entry_id`` (``fields``) ``consumer`` gave up on."""
    dead: dict[Any, Any] = dict(fields)
    dead.update({"dl_reason": reason, "dl_original_id": entry_id, "dl_failed_at": utc_now_iso(),
                 "dl_consumer": consumer})
    return dead


@dataclass(slots=True)
class ConsumerStats:
    """What one consumer did with the CRM orders it read, since it started (tests, ``/readyz``).

    ``created``: a new MES order; ``duplicates``: the MES already had it (a redelivery);
    ``dead_lettered``: copied to the dead-letter stream; ``failures``: not delivered, left pending
    to be retried; ``redelivered``: entries read again after a failure or a consumer's crash (the
    relay counts them; the legacy consumer does not).
    """

    created: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failures: int = 0
    redelivered: int = 0
