"""Partner scoping rules without servers: operations, queries, bodies, projections, config."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from multidict import MultiDict, MultiDictProxy

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.partner_api.orders import (
    ORDER_FIELDS,
    Operation,
    PartnerInputError,
    classify,
    create_body,
    list_query,
    project_order,
    project_page,
    upstream_problem,
)

MES_ORDER = {"id": 7, "source": "crm", "external_ref": "CRM-1", "partner_id": "acme", "customer": "ACME",
             "material": "PLA", "quantity": 1, "model_name": "a.stl", "model_sha256": None, "price_eur": 1.5,
             "status": "SUBMITTED", "created_at": "t", "updated_at": "t", "status_changed_at": "t",
             "added_by_a_later_mes": "secret"}


def _query(*pairs: tuple[str, str]) -> MultiDictProxy[str]:
    return MultiDictProxy(MultiDict(pairs))


@pytest.mark.parametrize(("method", "sub", "expected"), [
    ("POST", "", Operation("create")), ("GET", "", Operation("list")), ("GET", "/42", Operation("get", 42)),
    ("POST", "/42", Operation("get", 42)),  # the filter answers 405 for it
    ("GET", "/", None), ("GET", "/42/status", None), ("GET", "/0", None), ("GET", "/042", None),
    ("GET", "/-1", None), ("GET", "/1e3", None), ("GET", "/٣", None), ("GET", "/9223372036854775808", None),
    ("GET", "/42/", None), ("GET", "X", None),
])
def test_only_three_operations_exist(method: str, sub: str, expected: Operation | None) -> None:
    assert classify(method, sub) == expected


def test_list_query_forces_the_caller_and_drops_its_partner_id() -> None:
    query = list_query(_query(("status", "SHIPPED"), ("partner_id", "globex"), ("partner_id", "x"),
                              ("page", "2"), ("per_page", "05")), "acme")
    assert list(query.items()) == [("status", "SHIPPED"), ("page", "2"), ("per_page", "5"),
                                   ("partner_id", "acme")]
    assert list_query(_query(), "acme") == MultiDict([("per_page", "20"), ("partner_id", "acme")])


@pytest.mark.parametrize(("pairs", "status", "param"), [
    ((("offset", "1"),), 400, "offset"), ((("status", "A"), ("status", "B")), 400, "status"),
    ((("status", "shipped"),), 422, "status"), ((("per_page", "101"),), 422, "per_page"),
    ((("page", "0"),), 422, "page"), ((("page", "1" * 5000),), 422, "page"), ((("page", "²"),), 422, "page"),
    ((("per_page", ""),), 422, "per_page"),
])
def test_bad_list_queries_name_the_parameter(pairs: tuple[tuple[str, str], ...], status: int,
                                             param: str) -> None:
    with pytest.raises(PartnerInputError) as info:
        list_query(_query(*pairs), "acme")
    assert (info.value.status, info.value.param) == (status, param)


def test_create_body_keeps_allowed_members_and_sets_the_caller() -> None:
    sent = {"customer": "ACME", "material": "PLA", "quantity": 2.0, "model_name": "a.stl",
            "partner_id": "globex", "source": "crm", "external_ref": "CRM-9", "extra": [1]}
    assert orjson.loads(create_body(orjson.dumps(sent), "acme")) == {
        "customer": "ACME", "material": "PLA", "quantity": 2, "model_name": "a.stl", "partner_id": "acme"}


@pytest.mark.parametrize(("raw", "status"), [(b"", 400), (b"  ", 400), (b"{", 400), (b'"\\ud800"', 400),
                                             (b"[]", 422), (b"null", 422), (b"1", 422)])
def test_create_body_refuses_anything_but_a_json_object(raw: bytes, status: int) -> None:
    with pytest.raises(PartnerInputError) as info:
        create_body(raw, "acme")
    assert info.value.status == status


def test_projection_hides_internal_and_unknown_columns() -> None:
    order = project_order(MES_ORDER)
    assert tuple(order) == ORDER_FIELDS
    assert not {"source", "external_ref", "added_by_a_later_mes"} & set(order)
    page = project_page({"items": [MES_ORDER], "page": 1, "per_page": 20, "offset": 0, "total": 1},
                        MES_ORDER["partner_id"])
    assert page == {"items": [order], "page": 1, "per_page": 20, "total": 1}
    with pytest.raises(ValueError, match="items"):
        project_page({"items": [1]}, "acme")


def test_upstream_problems_keep_only_detail_and_well_formed_invalid_params() -> None:
    body = orjson.dumps({"type": "about:blank", "instance": "/orders", "detail": "quantity: bad",
                         "invalid_params": [{"name": "quantity", "reason": "bad"}, {"name": 1}]})
    assert upstream_problem(body) == ("quantity: bad", [{"name": "quantity", "reason": "bad"}])
    assert upstream_problem(b"<html>")[1] is None


ROUTE: dict[str, Any] = {"name": "p", "listener": "external", "prefix": "/partner/v1/orders",
                         "cluster": "mes", "partner_scope": "orders"}
BASE: dict[str, Any] = {"listeners": {"external": {}, "internal": {}},
                        "clusters": {"mes": {"endpoints": ["http://127.0.0.1:9101"]}}, "routes": [ROUTE]}


def test_partner_scope_is_a_route_option() -> None:
    assert parse_config(BASE).routes[0].partner_scope == "orders"


@pytest.mark.parametrize(("change", "message"), [
    ({"partner_scope": "quotes"}, "partner_scope: must be one of orders"),
    ({"auth": {"required": False}, "ratelimit": False}, "only for external routes with auth"),
    ({"listener": "internal", "prefix": "/orders"}, "only for external routes with auth"),
])
def test_partner_scope_misuse_fails_at_load(change: dict[str, Any], message: str) -> None:
    data = copy.deepcopy(BASE)
    data["routes"][0].update(change)
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
