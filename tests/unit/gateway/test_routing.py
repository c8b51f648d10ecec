"""Route table matching: longest prefix on segment boundaries, 404 vs 405, rewrite."""

from __future__ import annotations

import pytest

from gateway.errors import MethodNotAllowed, RouteNotFound
from gateway.route_table import CACHE_PATHS, Route, RouteTable, parse_template
from gateway.upstreams.config import RetryPolicy, TimeoutPolicy


def make_route(name: str, prefix: str, methods: set[str] | None = None, rewrite: str | None = None) -> Route:
    return Route(name=name, listener="internal", prefix=prefix, methods=frozenset(methods or {"GET"}),
                 cluster="mes", rewrite_prefix=rewrite, timeouts=TimeoutPolicy(), retry=RetryPolicy(),
                 max_body_bytes=1024, body_timeout=1.0)


def test_longest_prefix_wins() -> None:
    table = RouteTable([make_route("all", "/orders"), make_route("one", "/orders/special")])
    assert table.match("GET", "/orders/special/1").name == "one"
    assert table.match("GET", "/orders/7").name == "all"


def test_prefix_matches_only_on_segment_boundary() -> None:
    table = RouteTable([make_route("orders", "/orders")])
    assert table.match("GET", "/orders").name == "orders"
    with pytest.raises(RouteNotFound):
        table.match("GET", "/ordersX")


def test_known_path_with_wrong_method_is_405_not_404() -> None:
    table = RouteTable([make_route("orders", "/orders", {"GET"})])
    with pytest.raises(MethodNotAllowed):
        table.match("DELETE", "/orders/1")


def test_same_prefix_different_methods_pick_the_route_for_the_method() -> None:
    table = RouteTable([make_route("read", "/orders", {"GET"}), make_route("write", "/orders", {"POST"})])
    assert table.match("POST", "/orders").name == "write"
    assert table.match("GET", "/orders").name == "read"


@pytest.mark.parametrize(("path_qs", "expected"), [
    ("/partner/v1/orders", "/orders"),
    ("/partner/v1/orders/42", "/orders/42"),
    ("/partner/v1/orders?status=SHIPPED", "/orders?status=SHIPPED"),
])
def test_rewrite_prefix_keeps_rest_and_query(path_qs: str, expected: str) -> None:
    route = make_route("p", "/partner/v1/orders", rewrite="/orders")
    assert route.upstream_path(path_qs) == expected


def test_path_cache_is_bounded() -> None:
    table = RouteTable([make_route("orders", "/orders")])
    for i in range(5000):
        table.match("GET", f"/orders/{i}")
    assert table.cached_paths == CACHE_PATHS


def make_template_route(name: str, template: str, methods: set[str] | None = None) -> Route:
    return Route(name=name, listener="internal", prefix=template, methods=frozenset(methods or {"POST"}),
                 cluster="mes-pricing", rewrite_prefix=None, timeouts=TimeoutPolicy(), retry=RetryPolicy(),
                 max_body_bytes=1024, body_timeout=1.0, segments=parse_template(template))


def test_template_route_beats_a_longer_matching_prefix() -> None:
    table = RouteTable([make_route("orders", "/orders", {"GET", "POST"}),
                        make_template_route("order-price", "/orders/{id}/price")])
    assert table.match("POST", "/orders/42/price").name == "order-price"
    assert table.match("POST", "/orders").name == "orders"
    assert table.match("GET", "/orders/42").name == "orders"
    # a template matches whole segments only, and a variable never matches an empty segment
    for path in ("/orders/42/price/x", "/orders//price", "/orders/42/prices", "/orders/42"):
        assert table.match("POST", path).name == "orders"


def test_template_route_with_other_method_falls_through_to_the_prefix() -> None:
    table = RouteTable([make_route("orders", "/orders", {"GET"}),
                        make_template_route("order-price", "/orders/{id}/price", {"POST"})])
    assert table.match("GET", "/orders/42/price").name == "orders"


@pytest.mark.parametrize(("template", "error"), [
    ("orders/{id}", "must start with '/'"),
    ("/orders/{id}x", "a variable is a whole segment"),
    ("/orders/{}", "a variable is a whole segment"),
    ("/orders/{not an id}", "a variable is a whole segment"),
])
def test_bad_templates_are_refused(template: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_template(template)
