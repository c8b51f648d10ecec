"""Order input validation, the CRM envelope v1, the seed plan and MES settings."""

from __future__ import annotations

import json

import pytest

from contracts.crm_envelope import CrmOrderMessage, PoisonMessage, parse_message
from contracts.lifecycle import OrderStatus
from contracts.order_input import InvalidOrder, parse_new_order
from legacy_sim.mes.config import MesConfig
from legacy_sim.seed import planned_counts, split_counts

ORDER = {"customer": " Acme ", "material": "pla", "quantity": 2, "model_name": "a.stl"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_new_order_is_normalised() -> None:
    order = parse_new_order({**ORDER, "model_sha256": "AB" * 32})
    assert (order.customer, order.material, order.model_sha256) == ("Acme", "PLA", "ab" * 32)


@pytest.mark.parametrize(("patch", "field"), [
    ({"customer": ""}, "customer"), ({"quantity": 1.5}, "quantity"), ({"quantity": 100_001}, "quantity"),
    ({"partner_id": 1}, "partner_id"), ({"material": None}, "material")])
def test_invalid_order_names_the_field(patch: dict, field: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        parse_new_order({**ORDER, **patch})
    assert info.value.field == field


def test_envelope_round_trip_keeps_trace_context() -> None:
    message = CrmOrderMessage(crm_order_id="CRM-1", order=parse_new_order(ORDER), submitted_at="t",
                              traceparent=TRACEPARENT, tracestate="k=v")
    fields = message.to_fields()
    assert fields["v"] == "1"
    parsed = parse_message({k.encode(): v.encode() for k, v in fields.items()})
    assert parsed.order.external_ref == "CRM-1"
    assert (parsed.traceparent, parsed.tracestate) == (TRACEPARENT, "k=v")
    assert parse_message(parsed.to_fields()) == parsed


def test_envelope_without_trace_context_has_no_trace_fields() -> None:
    fields = CrmOrderMessage(crm_order_id="C", order=parse_new_order(ORDER), submitted_at="t").to_fields()
    assert set(fields) == {"v", "crm_order_id", "payload", "submitted_at"}
    assert json.loads(fields["payload"])["material"] == "PLA"


@pytest.mark.parametrize("fields", [
    {}, {"v": "1"}, {"v": "1", "crm_order_id": "C", "payload": "[]"},
    {"v": "1", "crm_order_id": "C", "payload": json.dumps({**ORDER, "external_ref": "x"})}])
def test_unusable_envelopes_are_poison(fields: dict) -> None:
    with pytest.raises(PoisonMessage):
        parse_message(fields)


def test_split_counts_adds_up_exactly() -> None:
    weights = {OrderStatus.SUBMITTED: 1.0, OrderStatus.SHIPPED: 1.0, OrderStatus.PRICE_CALCULATED: 1.0}
    assert sum(split_counts(100, weights).values()) == 100
    plan = planned_counts(1_000_000, 3000)
    assert sum(plan.values()) == 1_000_000
    assert plan[OrderStatus.CANCELLED] == round(997_000 * 0.12)
    with pytest.raises(ValueError, match="active"):
        planned_counts(10, 11)


def test_mes_config_names_bad_settings() -> None:
    with pytest.raises(ValueError, match="pool_max_size, price_delay_s"):
        MesConfig(dsn="postgresql://x", pool_max_size=0, price_delay_s=-1)
    assert MesConfig(dsn="d", price_delay_s=2, price_delay_per_ktri_s=0.5).price_delay_for(4000) == 4.0
