"""What a delivery's answer means: ack, dead-letter, or retry; and what it tells the limiter."""

from __future__ import annotations

import pytest

from contracts.crm_envelope import parse_message
from sidecar.relay.delivery import DeliveryResult, Outcome, order_body


def test_order_body_is_the_crm_payload_with_source_and_external_ref() -> None:
    message = parse_message({"v": "1", "crm_order_id": "CRM-00000042", "submitted_at": "x",
                             "payload": '{"customer": "Acme", "material": "pla", "quantity": 2, '
                                        '"model_name": "a.stl"}'})
    assert order_body(message) == {"customer": "Acme", "material": "PLA", "quantity": 2,
                                   "model_name": "a.stl", "external_ref": "CRM-00000042", "source": "crm"}


@pytest.mark.parametrize(("outcome", "status", "confirmed", "answered", "overload"), [
    (Outcome.CREATED, 201, True, True, False),
    (Outcome.DUPLICATE, 200, True, True, False),
    (Outcome.REJECTED, 422, False, True, False),
    (Outcome.ERROR, 500, False, False, False),
    (Outcome.ERROR, 503, False, False, True),
    (Outcome.ERROR, 429, False, False, True),
    (Outcome.TIMEOUT, None, False, False, True),
    (Outcome.CONNECT_ERROR, None, False, False, True),
])
def test_result_classification(outcome: Outcome, status: int | None, confirmed: bool, answered: bool,
                               overload: bool) -> None:
    result = DeliveryResult(outcome=outcome, status=status)
    assert (result.confirmed, result.answered, result.overload) == (confirmed, answered, overload)
