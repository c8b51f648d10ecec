"""Route templates and labels are bounded: never a raw path or id."""

from __future__ import annotations

import pytest

from contracts.lifecycle import ACTIVE_STATUS_NAMES as ACTIVE_STATUSES
from contracts.lifecycle import TERMINAL_STATUS_NAMES as TERMINAL_STATUSES
from contracts.lifecycle import predecessor
from sidecar.metrics import status_class
from sidecar.routes import TEMPLATES, method_label, route_template


@pytest.mark.parametrize(("path", "mes", "crm"), [
    ("/orders", "/orders", "/orders"),
    ("/orders/42", "/orders/{id}", "/orders/{id}"),
    ("/orders/CRM-00000042", "/orders/{id}", "/orders/{id}"),
    ("/orders/42/status", "/orders/{id}/status", "other"),
    ("/orders/42/price", "/orders/{id}/price", "other"),
    ("/price", "/price", "other"),
    ("/healthz", "/healthz", "/healthz"),
    ("/", "other", "other"),
    ("/orders/", "other", "other"),
    ("/orders//status", "other", "other"),
    ("/orders/42/status/extra", "other", "other"),
    ("/admin/../orders", "other", "other"),
])
def test_route_template_per_kind(path: str, mes: str, crm: str) -> None:
    assert route_template("mes", path) == mes
    assert route_template("crm", path) == crm


def test_the_declared_templates_are_exactly_what_route_template_answers() -> None:
    paths = ["/orders", "/orders/42", "/orders/42/status", "/orders/42/price", "/price", "/healthz", "/"]
    for kind, templates in TEMPLATES.items():
        assert {route_template(kind, path) for path in paths} == set(templates)


def test_unknown_methods_and_statuses_map_to_bounded_labels() -> None:
    assert method_label("GET") == "GET"
    assert method_label("PROPFIND") == "_OTHER"
    assert [status_class(s) for s in (200, 404, 502, 499, 700, -1)] == ["2xx", "4xx", "5xx", "4xx", "other",
                                                                        "other"]


def test_lifecycle_predecessors_are_unique_except_for_cancellation() -> None:
    assert predecessor("PRICE_CALCULATED") == "SUBMITTED"
    assert predecessor("CLOSED") == "SHIPPED"
    assert predecessor("CANCELLED") is None
    assert predecessor("SUBMITTED") is None
    assert set(ACTIVE_STATUSES).isdisjoint(TERMINAL_STATUSES)
    assert len(ACTIVE_STATUSES) == 6
