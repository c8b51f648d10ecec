"""The compiled partner API document (``gateway/partner_api/contract.py``): matching and checks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from gateway.errors import ConfigError, MethodNotAllowed, RouteNotFound
from gateway.partner_api.contract import MAX_JSON_DEPTH, MEMO_ENTRIES, Contract, parse_json
from gateway.partner_api.openapi import load_document

NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.compile(load_document())


def test_every_operation_of_the_document_is_compiled(contract: Contract) -> None:
    assert set(contract.operation_ids) == {"createOrder", "listOrders", "getOrder", "createQuote", "getQuote",
                                           "getOpenApiDocument", "getUsage"}
    assert contract.base == "/partner/v1"
    assert contract.covers("/partner/v1/orders")
    assert not contract.covers("/partner/v10")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/partner/v1/quotes", "POST"), ("GET", "/partner/v1/quotes", "POST"),
    ("POST", "/partner/v1/quotes/ab", "GET, HEAD"), ("DELETE", "/partner/v1/orders", "GET, HEAD, POST"),
    ("OPTIONS", "/partner/v1/orders/1", "GET, HEAD")])
def test_an_undeclared_method_is_405_with_exactly_the_documents_methods(
        contract: Contract, method: str, path: str, allow: str) -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        contract.match(method, path)
    assert caught.value.headers == {"Allow": allow}


@pytest.mark.parametrize("path", ["/partner/v1/orders/", "/partner/v1/orders/1/status", "/partner/v1/nothing",
                                  "/partner/v1"])
def test_a_path_the_document_does_not_have_is_404(contract: Contract, path: str) -> None:
    with pytest.raises(RouteNotFound):
        contract.match("GET", path)


def test_head_follows_get_and_path_parameters_are_extracted(contract: Contract) -> None:
    op, values = contract.match("HEAD", "/partner/v1/orders/42")
    assert (op.operation_id, values) == ("getOrder", {"order_id": "42"})


def test_query_strings_are_read_as_the_schemas_types(contract: Contract) -> None:
    op, values = contract.match("GET", "/partner/v1/orders")
    ok = MultiDict([("page", "2"), ("per_page", "100"), ("status", "SHIPPED"), ("partner_id", "a"),
                    ("partner_id", "b")])
    assert op.check_parameters(values, ok, NO_HEADERS) == []
    bad = op.check_parameters(values, MultiDict([("page", "1.5"), ("per_page", "0x10"), ("page", "2")]),
                              NO_HEADERS)
    assert [(v.pointer, v.reason, v.malformed) for v in bad] == [
        ("/page", "is given more than once", True), ("/per_page", "must be of type integer", False)]


def test_header_parameters_and_required_query_parameters_are_checked(contract: Contract) -> None:
    op, values = contract.match("POST", "/partner/v1/quotes")
    headers = CIMultiDictProxy(CIMultiDict({"idempotency-key": "has space"}))
    found = op.check_parameters(values, MultiDict([("material", "WOOD")]), headers)
    assert [(v.location, v.pointer) for v in found] == [("query", "/material"),
                                                         ("header", "/Idempotency-Key")]


def test_json_bodies_list_every_violation_with_a_pointer(contract: Contract) -> None:
    op, _ = contract.match("POST", "/partner/v1/orders")
    validator = op.media["application/json"]
    assert validator is not None
    value, found = op.check_json(validator, b'{"customer": "A", "material": "PLA", "quantity": 2.0, '
                                            b'"model_name": "a.stl", "model_sha256": null, "extra": 1}')
    assert found == []
    assert value["quantity"] == 2.0
    _, found = op.check_json(validator, b'{"quantity": "2"}')
    assert {v.pointer for v in found} == {"/quantity", "/customer", "/material", "/model_name"}
    assert {v.as_param()["in"] for v in found} == {"body"}


@pytest.mark.parametrize("raw", [b'{"a": 1, "a": 2}', b'[{"b": {"c": 1, "c": 1}}]', b"[" * 2000, b"NaN",
                                 b'"\\udc00"', b"\xff", b"1e999",
                                 # repeats the fast member count must not miss: whitespace before the
                                 # colon, a string value with '":' inside, deep in arrays
                                 b'{"a":1, "a" :2}', b'{"a": "x\\":", "a"\t\r\n: 2, "b": 1}',
                                 b'[[[{"k": [{"k": 1, "k": 2}]}]]]'])
def test_strict_json_refuses_what_parsers_disagree_on(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 — every refusal is a ValueError naming the problem
        parse_json(raw)


@pytest.mark.parametrize("raw", [b'{"a": "\\":", "b": {"c" : [1, {"d": "\\"  :"}]}}', b'[]', b'{}',
                                 b'{"a": {"a": {"a": 1}}}', b'[{"a": 1}, {"a": 1}]'])
def test_strict_json_accepts_same_names_in_different_objects_and_colons_in_strings(raw: bytes) -> None:
    assert parse_json(raw) == json.loads(raw)


def test_strict_json_nests_at_most_max_json_depth_levels() -> None:
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(ValueError, match="levels deep"):
        parse_json(b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}")


def test_a_document_the_layer_cannot_enforce_fails_at_start_up() -> None:
    doc: dict[str, Any] = copy.deepcopy(load_document())
    doc["paths"]["/orders"]["get"]["parameters"].append(
        {"name": "filter", "in": "query", "style": "deepObject", "schema": {"type": "object"}})
    with pytest.raises(ConfigError, match=r"parameters\[4\]"):
        Contract.compile(doc)


def test_parameter_checks_are_remembered_per_request_target_and_bounded(contract: Contract) -> None:
    op, values = contract.match("GET", "/partner/v1/orders")
    request = make_mocked_request("GET", "/partner/v1/orders?page=0")
    first = op.check_request(values, request)
    assert [v.pointer for v in first] == ["/page"]
    assert op.check_request(values, request) == first
    for i in range(MEMO_ENTRIES + 5):
        op.check_request(values, make_mocked_request("GET", f"/partner/v1/orders?page={i}"))
    assert len(op._memo) <= MEMO_ENTRIES
    op._memo.clear()
    long = make_mocked_request("GET", "/partner/v1/orders?status=" + "X" * 600)
    assert [v.pointer for v in op.check_request(values, long)] == ["/status"]
    assert op._memo == {}  # a long (hostile) target is checked every time, never remembered


def test_the_media_type_is_parsed_once_per_spelling_and_the_memory_stays_bounded() -> None:
    from aiohttp.test_utils import make_mocked_request

    from gateway.filters import contract as contract_filter

    def media(value: str) -> str:
        return contract_filter._media_type(make_mocked_request("POST", "/", headers={"Content-Type": value}))

    assert media("application/json; charset=utf-8") == "application/json"
    assert media("Application/JSON") == "application/json"
    assert media("application/json; charset=utf-8") == "application/json"  # remembered, same answer
    for n in range(600):
        media(f"application/x-{n}")
    assert len(contract_filter._MEDIA_TYPES) <= contract_filter._MEDIA_TYPE_ENTRIES
    long = "application/json; a=" + "b" * 300
    assert media(long) == "application/json"
    assert long not in contract_filter._MEDIA_TYPES
