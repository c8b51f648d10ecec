"""The CRM queue's dead-letter entry: one format for the legacy consumer and the relay."""

from __future__ import annotations

from datetime import datetime

from contracts.crm_queue import ConsumerStats, dead_letter_fields


def test_a_dead_letter_keeps_the_original_fields_and_says_who_gave_up_why_and_when() -> None:
    original = {b"v": b"1", b"crm_order_id": b"CRM-00000042", b"payload": b"{}"}
    dead = dead_letter_fields(original, reason="payload is not JSON", entry_id="1700000000000-0",
                              consumer="mes-relay/mes-1")
    assert {k: dead[k] for k in original} == original
    assert (dead["dl_reason"], dead["dl_original_id"], dead["dl_consumer"]) == (
        "payload is not JSON", "1700000000000-0", "mes-relay/mes-1")
    assert datetime.fromisoformat(dead["dl_failed_at"]).utcoffset() is not None
    assert original == {b"v": b"1", b"crm_order_id": b"CRM-00000042", b"payload": b"{}"}  # not changed


def test_consumer_stats_start_at_zero() -> None:
    assert ConsumerStats() == ConsumerStats(created=0, duplicates=0, dead_lettered=0, failures=0,
                                            redelivered=0)
